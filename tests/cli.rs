//! The `seqbridge` binary: generate / score JSON on a fixture match reference.json, errors
//! exit non-zero with one line on stderr.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn fixture(family: &str) -> PathBuf {
    let root = std::env::var_os("SEQBRIDGE_MODEL_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models"));
    let dir = root.join(family);
    assert!(
        dir.join("config.json").exists(),
        "fixture {} is missing",
        dir.display()
    );
    dir
}

fn reference(family: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(family).join("reference.json")).unwrap())
        .unwrap()
}

fn ids_arg(v: &Value) -> String {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn run(args: &[String]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_seqbridge"))
        .args(args)
        .output()
        .expect("run seqbridge");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// Per family, the first greedy case without options beyond max_new_tokens, through
/// `seqbridge generate --format json`.
#[test]
fn generate_json_matches_reference() {
    for family in ["marian", "bart", "t5", "t5_v1_1", "mt5", "umt5"] {
        generate_json_case(family);
    }
}

fn generate_json_case(family: &str) {
    let r = reference(family);
    let case = r["generate"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["kwargs"]
                .get("num_beams")
                .and_then(Value::as_u64)
                .unwrap_or(1)
                == 1
                && c["kwargs"].get("max_new_tokens").is_some()
                && c["kwargs"].get("min_length").is_none()
                && c["kwargs"].get("repetition_penalty").is_none()
        })
        .expect("a greedy case");
    let mut args = vec![
        "generate".to_string(),
        "--model".into(),
        fixture(family).display().to_string(),
    ];
    for src in case["input_ids"].as_array().unwrap() {
        args.extend(["--input-ids".to_string(), ids_arg(src)]);
    }
    args.extend([
        "--max-new-tokens".into(),
        case["kwargs"]["max_new_tokens"].to_string(),
        "--stats".into(),
        "--format".into(),
        "json".into(),
    ]);
    if let Some(n) = case["kwargs"].get("num_beams") {
        args.extend(["--num-beams".into(), n.to_string()]);
    }
    let (ok, stdout, stderr) = run(&args);
    assert!(ok, "generate failed: {stderr}");
    let v: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("not one JSON object: {e}: {stdout}"));
    assert_eq!(
        v["sequences"], case["sequences"],
        "{family}: case {}",
        case["name"]
    );
    assert_eq!(v["stats"]["encoder_runs"], 1);
    assert_eq!(v["stats"]["weight_bytes_uploaded"], 0);
}

#[test]
fn score_json_matches_reference() {
    let r = reference("marian");
    let case = &r["score"][0];
    let mut args = vec![
        "score".to_string(),
        "--model".into(),
        fixture("marian").display().to_string(),
    ];
    for (src, tgt) in case["input_ids"]
        .as_array()
        .unwrap()
        .iter()
        .zip(case["target_ids"].as_array().unwrap())
    {
        args.extend([
            "--input-ids".to_string(),
            ids_arg(src),
            "--target-ids".into(),
            ids_arg(tgt),
        ]);
    }
    args.extend(["--format".into(), "json".into()]);
    let (ok, stdout, stderr) = run(&args);
    assert!(ok, "score failed: {stderr}");
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    let got = v["logprobs"].as_array().unwrap();
    let want = case["logprobs"].as_array().unwrap();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        for (a, b) in g.as_array().unwrap().iter().zip(w.as_array().unwrap()) {
            assert!(
                (a.as_f64().unwrap() - b.as_f64().unwrap()).abs() < 1e-3,
                "{g} vs {w}"
            );
        }
    }
}

#[test]
fn errors_exit_nonzero_with_one_line() {
    let dir = fixture("marian").display().to_string();
    for args in [
        vec![
            "generate",
            "--model",
            "/nonexistent/model",
            "--input-ids",
            "1,2",
        ],
        vec!["generate", "--model", &dir, "--input-ids", "1,99999999"],
        vec!["generate", "--model", &dir, "--input-ids", "1,x"],
        vec!["score", "--model", &dir, "--input-ids", "1,2"],
    ] {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let (ok, _, stderr) = run(&args);
        assert!(!ok, "{args:?} succeeded");
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{args:?}: stderr {stderr:?}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// Every text case: --text in, ids and decoded text out, as transformers gave them.
#[test]
fn generate_text_json_matches_reference() {
    let r = reference("marian");
    let cases = r["text"].as_array().expect("text cases");
    assert!(!cases.is_empty());
    for case in cases {
        let mut args = vec![
            "generate".to_string(),
            "--model".into(),
            fixture("marian").display().to_string(),
            "--text".into(),
            case["text"].as_str().unwrap().into(),
            "--format".into(),
            "json".into(),
        ];
        for (kw, flag) in [
            ("max_new_tokens", "--max-new-tokens"),
            ("num_beams", "--num-beams"),
            ("early_stopping", "--early-stopping"),
        ] {
            if let Some(n) = case["kwargs"].get(kw) {
                args.extend([flag.into(), n.to_string()]);
            }
        }
        let (ok, stdout, stderr) = run(&args);
        assert!(ok, "generate --text failed: {stderr}");
        let v: Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(v["sequences"][0], case["sequence"], "{}", case["text"]);
        assert_eq!(v["text"][0], case["decoded"], "{}", case["text"]);
    }
}

/// `seqbridge bench` reports every documented field with sane values.
#[test]
fn bench_tiny_reports_every_field() {
    for extra in [
        &[][..],
        &[
            "--beams",
            "2",
            "--batch",
            "3",
            "--new-tokens",
            "5",
            "--warmup",
            "0",
        ][..],
    ] {
        let mut args: Vec<String> = [
            "bench", "--config", "tiny", "--iters", "2", "--format", "json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let (ok, out, err) = run(&args);
        assert!(ok, "bench failed: {err}");
        let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        let num = |k: &str| {
            v[k].as_f64()
                .unwrap_or_else(|| panic!("field {k} missing or not a number in {v}"))
        };
        for k in [
            "tokens_per_s",
            "load_ms",
            "encoder_ms",
            "step_ms_median",
            "host_ms_per_step",
            "dispatches_per_step",
            "bytes_uploaded_per_step",
        ] {
            assert!(num(k) > 0.0, "{k} = {} in {v}", num(k));
        }
        assert!(num("step_ms_p90") >= num("step_ms_median"), "{v}");
        assert!(num("host_ms_per_step") <= num("step_ms_p90"), "{v}");
        // The adapter's measured limits (cached after the first run) and the step against them.
        let r = &v["roofline"];
        let rn = |k: &str| {
            r[k].as_f64()
                .unwrap_or_else(|| panic!("roofline.{k} in {v}"))
        };
        for k in ["read_gb_s", "fma_gflop_s", "step_weight_gb_per_s"] {
            assert!(rn(k).is_finite() && rn(k) > 0.0, "roofline.{k} in {v}");
        }
        let fraction = rn("step_weight_gb_per_s") / rn("read_gb_s");
        assert!(
            (rn("step_bandwidth_fraction") - fraction).abs() < 1e-9,
            "{v}"
        );
        // One submit per decode step, and at least the 2 decoder layers' dispatches.
        assert_eq!(num("submits_per_step"), 1.0, "{v}");
        assert!(num("dispatches_per_step") >= 2.0 * 9.0, "{v}");
        assert!(v["gpu_bytes_allocated"].as_u64().unwrap_or(0) > 0, "{v}");
        // Per family, with timestamps: achieved rates over the declared work; matmul's FLOPs
        // are 2·M·N·K, so its GFLOP/s is positive.
        match &r["families"] {
            Value::Null => assert!(v["gpu_ms_by_kernel"].is_null(), "{v}"),
            Value::Object(m) => {
                let mm = &m["matmul"];
                for k in ["ms", "gb", "gflop", "gb_s", "gflop_s", "bandwidth_fraction"] {
                    let x = mm[k].as_f64().unwrap_or(-1.0);
                    assert!(
                        x.is_finite() && x > 0.0,
                        "roofline.families.matmul.{k} in {v}"
                    );
                }
                let f = mm["gflop_s"].as_f64().unwrap_or(0.0) / rn("fma_gflop_s");
                assert!((mm["fma_fraction"].as_f64().unwrap_or(-1.0) - f).abs() < 1e-9);
            }
            other => panic!("roofline.families is {other}"),
        }
        match &v["gpu_ms_by_kernel"] {
            Value::Null => {}
            Value::Object(m) => {
                for family in ["matmul", "attention", "norm", "embedding", "sampling"] {
                    assert!(
                        m.get(family)
                            .and_then(Value::as_f64)
                            .is_some_and(|t| t >= 0.0),
                        "{family} in {v}"
                    );
                }
            }
            other => panic!("gpu_ms_by_kernel is {other}"),
        }
        for k in ["adapter", "backend", "engine", "config", "dtype"] {
            assert!(v[k].as_str().is_some_and(|s| !s.is_empty()), "{k} in {v}");
        }
        let beams = if extra.is_empty() { 1 } else { 2 };
        assert_eq!(v["beams"], beams);
        assert_eq!(v["iters"], 2);
        assert_eq!(v["config"], "tiny");
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// README's first command: the shipped model, no --model, the translation alone on stdout.
#[test]
fn translate_readme_example_prints_the_iso_date() {
    let (ok, out, err) = run(&strings(&[
        "translate",
        "Saturday, 28 November 2026",
        "le 3 mars 1999 à 14h05",
    ]));
    assert!(ok, "{err}");
    assert_eq!(out, "2026-11-28\n1999-03-03T14:05\n");
}

/// `--dtype int8` (weight-only int8) keeps the shipped model's answers; a bad dtype is a
/// one-line error naming the option and the value.
#[test]
fn translate_int8_gives_the_same_dates() {
    let (ok, out, err) = run(&strings(&[
        "translate",
        "--dtype",
        "int8",
        "Saturday, 28 November 2026",
        "le 3 mars 1999 à 14h05",
    ]));
    assert!(ok, "{err}");
    assert_eq!(out, "2026-11-28\n1999-03-03T14:05\n");
    let (ok, _, err) = run(&strings(&["translate", "--dtype", "int4", "x"]));
    assert!(
        !ok && err.contains("int4") && err.contains("--dtype"),
        "{err}"
    );
}

/// `translate --input IN --output OUT` with `input` in IN: (success, OUT's text, stderr).
fn translate_file(input: &str, extra: &[&str]) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (in_path, out_path) = (dir.path().join("in.txt"), dir.path().join("out.txt"));
    std::fs::write(&in_path, input).unwrap();
    let mut args = strings(&[
        "translate",
        "--input",
        in_path.to_str().unwrap(),
        "--output",
        out_path.to_str().unwrap(),
    ]);
    args.extend(strings(extra));
    let (ok, _, err) = run(&args);
    (
        ok,
        std::fs::read_to_string(&out_path).unwrap_or_default(),
        err,
    )
}

/// File mode: every line comes back, in order; empty and blank lines stay empty.
#[test]
fn translate_file_mode_keeps_every_line() {
    let lines = [
        "Saturday, 28 November 2026",
        "",
        "le 3 mars 1999 à 14h05",
        "   ",
        "Donnerstag, den 9. November 1989 um 19:00 Uhr",
        "",
    ];
    let (ok, got, err) = translate_file(&(lines.join("\n") + "\n"), &["--batch-size", "2"]);
    assert!(ok, "{err}");
    assert!(err.contains("translated 6 lines (3 non-empty"), "{err}");
    assert_eq!(
        got,
        "2026-11-28\n\n1999-03-03T14:05\n\n1989-11-09T19:00\n\n"
    );
}

/// --align prints a grid whose month row lights up under the month digits; --align-png
/// writes a heatmap.
#[test]
fn translate_align_grid_and_png() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("align.png");
    let (ok, out, err) = run(&strings(&[
        "translate",
        "Saturday, 28 November 2026",
        "--align",
        "--align-png",
        png.to_str().unwrap(),
    ]));
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "2026-11-28");
    assert!(lines.iter().any(|l| l.contains("mean over heads")), "{out}");
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
}

#[test]
fn eval_reports_exact_match() {
    let dir = tempfile::tempdir().unwrap();
    let tsv = dir.path().join("dates.tsv");
    std::fs::write(
        &tsv,
        "Saturday, 28 November 2026\t2026-11-28\nle 3 mars 1999 à 14h05\t1999-03-03T14:05\nle 3 mars 1999\t1999-03-04\n",
    )
    .unwrap();
    let (ok, out, err) = run(&strings(&["eval", "--tsv", tsv.to_str().unwrap()]));
    assert!(ok, "{err}");
    assert!(out.contains("exact match: 2/3 = 66.67%"), "{out}");
    assert!(out.contains("miss: \"le 3 mars 1999\""), "{out}");
}

/// The forms of issue 17's table, each with its documented answer: numeric dates day-first
/// (or the only way they read), two-digit years by %y, partial dates and times in ISO 8601's
/// reduced forms, and an empty line, named on stderr, for text with no date.
#[test]
fn translate_reads_what_people_type() {
    let table = [
        ("30.06.2015", "2015-06-30"),
        ("06/30/2015", "2015-06-30"),
        ("30/06/2015 08:00", "2015-06-30T08:00"),
        ("4/3/24", "2024-03-04"),
        ("Thu 2 Feb 23", "2023-02-02"),
        ("April 2030", "2030-04"),
        ("am 1. Mai", "--05-01"),
        ("09:45", "T09:45"),
        ("good morning", ""),
        ("17.04.2011 07:10", "2011-04-17T07:10"),
        ("11/23/2031 6:40 AM", "2031-11-23T06:40"),
        ("le 19/05/2008 à 7h30", "2008-05-19T07:30"),
        ("Nov. 5, '87", "1987-11-05"),
        ("in two weeks", ""),
        ("30 février 2019", ""),
        ("2019-14-02", ""),
    ];
    let mut args = strings(&["translate"]);
    args.extend(table.iter().map(|r| r.0.to_string()));
    let (ok, out, err) = run(&args);
    assert!(ok, "{err}");
    let want: String = table.iter().map(|r| format!("{}\n", r.1)).collect();
    assert_eq!(out, want, "stderr: {err}");
    for (i, (src, tgt)) in table.iter().enumerate() {
        let named = err.contains(&format!("line {}: no date in {src:?}", i + 1));
        assert_eq!(named, tgt.is_empty(), "line {}: {err}", i + 1);
    }
}

/// --month-first flips an ambiguous numeric date and nothing else; a model whose tokenizer
/// lacks the prefix token refuses it with one line.
#[test]
fn translate_month_first_reads_ambiguous_dates_month_first() {
    let (ok, out, err) = run(&strings(&[
        "translate",
        "--month-first",
        "4/3/24",
        "30/06/2015",
        "06/30/2015",
        "Saturday, 28 November 2026",
    ]));
    assert!(ok, "{err}");
    assert_eq!(out, "2024-04-03\n2015-06-30\n2015-06-30\n2026-11-28\n");
    let marian = fixture("marian");
    let (ok, _, err) = run(&strings(&[
        "translate",
        "--month-first",
        "--model",
        marian.to_str().unwrap(),
        "4/3/24",
    ]));
    assert!(!ok);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--month-first") && err.contains("<mdy>"),
        "{err}"
    );
}

/// File mode keeps line numbers: a line without a date stays an empty line.
#[test]
fn translate_file_mode_keeps_a_line_without_a_date() {
    let (ok, got, err) = translate_file("30.06.2015\ngood morning\n\n09:45\n", &[]);
    assert!(ok, "{err}");
    assert!(err.contains("line 2: no date"), "{err}");
    assert!(!err.contains("line 3:"), "{err}");
    assert_eq!(got, "2015-06-30\n\n\nT09:45\n");
}

/// A third column gives accuracy per category; an empty reference is "no date".
#[test]
fn eval_reports_accuracy_per_category() {
    let dir = tempfile::tempdir().unwrap();
    let tsv = dir.path().join("dates.tsv");
    std::fs::write(
        &tsv,
        "30.06.2015\t2015-06-30\tnumeric\ngood morning\t\tno-date\n\
         4/3/24\t2024-04-03\tnumeric\n<mdy>4/3/24\t2024-04-03\tnumeric\n",
    )
    .unwrap();
    let (ok, out, err) = run(&strings(&["eval", "--tsv", tsv.to_str().unwrap()]));
    assert!(ok, "{err}");
    assert!(out.contains("exact match: 3/4 = 75.00%"), "{out}");
    assert!(out.contains("  numeric: 2/3 = 66.67%"), "{out}");
    assert!(out.contains("  no-date: 1/1 = 100.00%"), "{out}");
}

#[test]
fn translate_names_a_line_that_is_too_long() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, format!("3 mars 1999\n{}\n", "x".repeat(300))).unwrap();
    let (ok, _, err) = run(&strings(&["translate", "--input", input.to_str().unwrap()]));
    assert!(!ok);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("line 2") && err.contains("max_position_embeddings"),
        "{err}"
    );
}

#[test]
fn info_names_the_adapter_and_its_limits() {
    let (ok, out, err) = run(&strings(&["info"]));
    assert!(ok, "{err}");
    for field in [
        "adapter:",
        "subgroups:",
        "max storage binding:",
        "max workgroup storage:",
    ] {
        assert!(out.contains(field), "{field} missing from {out}");
    }
}

/// An opus-mt directory without tokenizer.json (source.spm, target.spm, vocab.json, see
/// tools/make_tokenizer_fixtures.py): `translate --model DIR TEXT` prints transformers' text.
#[test]
fn translate_opus_mt_hub_layout_prints_transformers_text() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hub/opus_mt");
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
            .unwrap();
    assert!(!dir.join("tokenizer.json").exists());
    let case = &r["generate"][0];
    let text = r["encode"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == case["name"])
        .and_then(|c| c["text"].as_str())
        .expect("the text of the first generate case");
    let (ok, stdout, stderr) = run(&strings(&[
        "translate",
        "--model",
        dir.to_str().unwrap(),
        "--max-new-tokens",
        &case["kwargs"]["max_new_tokens"].to_string(),
        "--num-beams",
        "1",
        text,
    ]));
    assert!(ok, "translate failed: {stderr}");
    assert_eq!(stdout, format!("{}\n", case["decoded"].as_str().unwrap()));
}

/// A CTranslate2 Whisper directory of tools/whisper/fetch_weights.py (required: CI fetches
/// them).
fn whisper_dir(name: &str) -> PathBuf {
    let root = std::env::var_os("SEQBRIDGE_WHISPER_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/seqbridge/whisper"))
        })
        .expect("neither SEQBRIDGE_WHISPER_DIR nor HOME is set");
    let model = root.join(name);
    assert!(
        model.join("model.bin").exists(),
        "{} is missing: run `python3 tools/whisper/fetch_weights.py`",
        model.display()
    );
    model
}

/// transformers' greedy transcription of `file` by whisper-tiny.en in
/// tests/fixtures/whisper/reference.json.
fn tiny_en_reference(file: &str) -> Value {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let r: Value = serde_json::from_str(
        &std::fs::read_to_string(here.join("tests/fixtures/whisper/reference.json")).unwrap(),
    )
    .unwrap();
    r["models"]["whisper-tiny.en"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["file"] == file)
        .unwrap_or_else(|| panic!("{file} in reference.json"))
        .clone()
}

/// `seqbridge transcribe --format json` on whisper-tiny.en (CTranslate2), two files decoded
/// in one batch, prints transformers' greedy text of each (tests/fixtures/whisper/
/// reference.json), in the order given.
#[test]
fn transcribe_json_matches_transformers_text() {
    let model = whisper_dir("whisper-tiny.en-ct2");
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let entry = tiny_en_reference("en_gb.wav");
    let wav = here.join("tests/fixtures/audio/en_gb.wav");
    let second = here.join("tests/fixtures/audio/en_us.wav");
    let (ok, stdout, stderr) = run(&strings(&[
        "transcribe",
        wav.to_str().unwrap(),
        second.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--format",
        "json",
    ]));
    assert!(ok, "{stderr}");
    let out: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let t2 = &out["results"][1];
    assert!(
        t2["file"].as_str().unwrap().ends_with("en_us.wav"),
        "{stdout}"
    );
    let want2 = tiny_en_reference("en_us.wav")["greedy"]["text"]
        .as_str()
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(t2["text"].as_str(), Some(want2.as_str()), "{stdout}");
    let p = t2["segments"][0]["no_speech_prob"].as_f64().unwrap_or(-1.0);
    assert!(
        (0.0..0.5).contains(&p),
        "speech has a low no_speech_prob: {stdout}"
    );
    let t = &out["results"][0];
    let want = entry["greedy"]["text"].as_str().unwrap().trim();
    assert_eq!(t["text"].as_str(), Some(want), "{stdout}");
    // The whole sequence: start of transcript, <|notimestamps|>, the text, end of text.
    let mut tokens = vec![50257, 50362];
    tokens.extend(
        entry["greedy"]["generated"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap()),
    );
    tokens.push(50256);
    let got: Vec<u64> = t["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(got, tokens, "{stdout}");
    assert_eq!(t["language"], "en");
    assert_eq!(t["segments"].as_array().map(Vec::len), Some(1), "{stdout}");
    let (ok, _, stderr) = run(&strings(&[
        "transcribe",
        wav.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--language",
        "fr",
    ]));
    assert!(!ok && stderr.contains("English-only"), "{stderr}");
}

/// `seqbridge bench --model <whisper-tiny.en>` on one clip reports the transcription figures,
/// and what it timed is transformers' greedy transcription of the clip.
#[test]
fn bench_whisper_reports_every_field() {
    let model = whisper_dir("whisper-tiny.en-ct2");
    let model = model.to_str().unwrap();
    // The shortest clip: 43751 samples at 16 kHz (tests/fixtures/audio/manifest.json).
    let file = "en_gb_fast.wav";
    let wav = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/audio")
        .join(file);
    let wav = wav.to_str().unwrap();
    let (ok, out, err) = run(&strings(&[
        "bench", "--model", model, "--audio", wav, "--format", "json", "--runs", "1", "--warmup",
        "0",
    ]));
    assert!(ok, "bench failed: {err}");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let num = |k: &str| {
        v[k].as_f64()
            .unwrap_or_else(|| panic!("field {k} missing or not a number in {v}"))
    };
    for k in [
        "wall_seconds",
        "features_ms",
        "encoder_ms",
        "step_ms_median",
        "host_ms_per_step",
        "dispatches_per_step",
        "tokens_per_s",
        "step_weight_gb_per_s",
        "load_ms",
    ] {
        assert!(num(k) > 0.0, "{k} = {} in {v}", num(k));
    }
    assert_eq!(num("audio_seconds"), 43751.0 / 16000.0, "{v}");
    assert!(
        (num("rtf") - num("wall_seconds") / num("audio_seconds")).abs() < 1e-9,
        "{v}"
    );
    assert!(num("step_ms_p90") >= num("step_ms_median"), "{v}");
    assert_eq!(num("submits_per_step"), 1.0, "{v}");
    // Weights: f32 on the GPU; a step reads the decoder's (not its cross K/V projections).
    let (all, step) = (num("weight_bytes"), num("step_weight_bytes"));
    assert!(0.0 < step && step < all, "{v}");
    let expected = tiny_en_reference(file);
    let generated = expected["greedy"]["generated"].as_array().unwrap().len();
    // The generated tokens and EOS, which transformers leaves out of what it returns.
    assert_eq!(v["tokens_per_run"], generated + 1, "{v}");
    let clip = &v["clips"][0];
    assert_eq!(clip["tokens"], generated + 1, "{v}");
    assert_eq!(
        clip["text"].as_str(),
        expected["greedy"]["text"].as_str().map(str::trim),
        "{v}"
    );
    match &v["gpu_ms_by_kernel"] {
        Value::Null => {}
        Value::Object(m) => {
            for family in ["conv", "matmul", "attention", "norm"] {
                assert!(
                    m.get(family)
                        .and_then(Value::as_f64)
                        .is_some_and(|t| t > 0.0),
                    "{family} in {v}"
                );
            }
        }
        other => panic!("gpu_ms_by_kernel is {other}"),
    }
    assert_eq!(
        (v["runs"].as_u64(), v["beams"].as_u64()),
        (Some(1), Some(1)),
        "{v}"
    );
    assert_eq!(
        v["language"],
        Value::Null,
        "--audio without --language: {v}"
    );
    assert!(v["adapter"].as_str().is_some_and(|s| !s.is_empty()), "{v}");

    // The text bench's shape options have no meaning here, nor the audio ones for text.
    let (ok, _, err) = run(&strings(&[
        "bench",
        "--model",
        model,
        "--audio",
        wav,
        "--new-tokens",
        "4",
    ]));
    assert!(
        !ok && err.contains("--new-tokens") && err.lines().count() == 1,
        "{err}"
    );
    let (ok, _, err) = run(&strings(&["bench", "--config", "tiny", "--audio", wav]));
    assert!(!ok && err.contains("Whisper"), "{err}");
}

/// Checks that `srt` is well-formed SubRip: numbered cues, `HH:MM:SS,mmm --> HH:MM:SS,mmm`
/// with start ≤ end, non-decreasing starts, a text line, a blank line. Returns the cues.
fn srt_cues(srt: &str) -> Vec<(f64, f64, String)> {
    let secs = |t: &str| {
        let (hms, ms) = t
            .split_once(',')
            .unwrap_or_else(|| panic!("bad time {t:?}"));
        let p: Vec<f64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
        assert_eq!(p.len(), 3, "bad time {t:?}");
        p[0] * 3600.0 + p[1] * 60.0 + p[2] + ms.parse::<f64>().unwrap() / 1000.0
    };
    let mut cues = Vec::new();
    for (i, block) in srt.split_terminator("\n\n").enumerate() {
        let lines: Vec<&str> = block.lines().collect();
        assert_eq!(lines.len(), 3, "cue {}: {block:?}", i + 1);
        assert_eq!(lines[0], (i + 1).to_string());
        let (a, b) = lines[1].split_once(" --> ").expect("-->");
        let (a, b) = (secs(a), secs(b));
        assert!(a <= b, "cue {}: {a} > {b}", i + 1);
        if let Some((prev, _, _)) = cues.last() {
            assert!(*prev <= a, "cue {} starts before the previous one", i + 1);
        }
        cues.push((a, b, lines[2].to_string()));
    }
    assert!(srt.ends_with("\n\n"), "{srt:?}");
    cues
}

/// `--format srt --word-timestamps --output FILE`: one cue per word of the transcript, in
/// order, within the clip; a file that is not audio fails naming it and leaves no output
/// behind (nor a temporary file).
#[test]
fn transcribe_writes_subtitles_with_word_timestamps() {
    let model = whisper_dir("whisper-tiny.en-ct2");
    let model = model.to_str().unwrap();
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let wav = here.join("tests/fixtures/audio/en_us.wav");
    let wav = wav.to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();

    let bad = tmp.path().join("notes.wav");
    std::fs::write(&bad, "not audio").unwrap();
    let dest = tmp.path().join("out.json");
    let (ok, _, err) = run(&strings(&[
        "transcribe",
        bad.to_str().unwrap(),
        wav,
        "--model",
        model,
        "--format",
        "json",
        "--output",
        dest.to_str().unwrap(),
    ]));
    assert!(!ok && err.contains("notes.wav"), "{err}");
    assert!(!dest.exists(), "a failed run left {}", dest.display());
    let (ok, _, err) = run(&strings(&["transcribe", wav, wav, "--format", "srt"]));
    assert!(!ok && err.contains("one FILE"), "{err}");
    let (ok, _, err) = run(&strings(&["transcribe", wav, "--batch-size", "0"]));
    assert!(
        !ok && err.contains("--batch-size must be at least 1"),
        "{err}"
    );

    let out = tmp.path().join("en_us.srt");
    let (ok, _, err) = run(&strings(&[
        "transcribe",
        wav,
        "--model",
        model,
        "--timestamps",
        "--word-timestamps",
        "--format",
        "srt",
        "--output",
        out.to_str().unwrap(),
    ]));
    assert!(ok, "{err}");
    let srt = std::fs::read_to_string(&out).unwrap();
    let cues = srt_cues(&srt);
    let text: Vec<String> = cues.iter().map(|c| c.2.clone()).collect();
    // transformers' transcription of the clip with timestamps (transcribe_reference.json).
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(here.join("tests/fixtures/whisper/transcribe_reference.json"))
            .unwrap(),
    )
    .unwrap();
    let entry = reference["models"]["whisper-tiny.en"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["file"] == "en_us.wav" && e["num_beams"] == 1)
        .unwrap();
    let want: Vec<String> = entry["text"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(text, want, "{srt}");
    assert!(cues.last().unwrap().1 <= 70740.0 / 16000.0 + 0.02, "{srt}");
    let leftovers = std::fs::read_dir(tmp.path()).unwrap().count();
    assert_eq!(
        leftovers,
        2,
        "temporary files left in {}",
        tmp.path().display()
    );
}

/// `seqbridge caption` on the tiny ViT + GPT-2 fixture: the JSON holds transformers'
/// greedy sequences and captions of the three images (one batch), in order; the text
/// format prints the captions one per line; a file that is not an image is named.
#[test]
fn caption_json_matches_reference() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vision");
    let dir = root.join("vit-gpt2");
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
            .unwrap();
    let case = &r["generate"][0];
    assert_eq!(case["name"], "greedy_batch3");
    let mut args = vec!["caption".to_string()];
    for f in r["images"].as_array().unwrap() {
        args.push(
            root.join("images")
                .join(f.as_str().unwrap())
                .display()
                .to_string(),
        );
    }
    let max_new = case["kwargs"]["max_new_tokens"].to_string();
    args.extend([
        "--model".into(),
        dir.display().to_string(),
        "--max-new-tokens".into(),
        max_new,
    ]);
    let mut json_args = args.clone();
    json_args.extend(["--format".into(), "json".into()]);
    let (ok, stdout, stderr) = run(&json_args);
    assert!(ok, "{stderr}");
    let v: Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(v["sequences"], case["sequences"]);
    assert_eq!(v["captions"], r["captions"]);

    let (ok, stdout, stderr) = run(&args);
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    let want: Vec<String> = r["captions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().replace(['\n', '\r'], " "))
        .collect();
    assert_eq!(lines, want);

    let bad = dir.join("config.json").display().to_string();
    let (ok, _, stderr) = run(&[
        "caption".into(),
        bad,
        "--model".into(),
        dir.display().to_string(),
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("config.json") && stderr.lines().count() == 1,
        "{stderr}"
    );
}

/// `caption --align-png` with two images writes one sheet per image, FILE-0.png and
/// FILE-1.png, with a panel per generated token beside the image.
#[test]
fn caption_align_png_writes_one_sheet_per_image() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vision");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("align.png");
    let (ok, stdout, stderr) = run(&[
        "caption".into(),
        root.join("images/gradient.png").display().to_string(),
        root.join("images/shapes.jpg").display().to_string(),
        "--model".into(),
        root.join("deit-gpt2").display().to_string(),
        "--max-new-tokens".into(),
        "4".into(),
        "--format".into(),
        "json".into(),
        "--align-png".into(),
        out.display().to_string(),
    ]);
    assert!(ok, "{stderr}");
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    for i in 0..2 {
        let path = tmp.path().join(format!("align-{i}.png"));
        let (w, h) = image_size(&path);
        // One panel for the image and one per generated token, five to a row.
        let panels = v["sequences"][i].as_array().unwrap().len();
        assert!(w > h && h > 100, "{path:?}: {w}×{h} for {panels} panels");
    }
    assert!(!out.exists(), "several images write numbered files");
}

/// Width and height from a PNG's IHDR chunk.
fn image_size(path: &std::path::Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[1..4], b"PNG", "{}", path.display());
    let be = |o: usize| u32::from_be_bytes(bytes[o..o + 4].try_into().unwrap());
    (be(16), be(20))
}

/// `generate` arguments for a short greedy run on the marian fixture.
fn marian_generate(extra: &[&str]) -> Vec<String> {
    let dir = fixture("marian").display().to_string();
    let mut args = strings(&["generate", "--model", &dir, "--input-ids", "17,42,5,0"]);
    if !extra.contains(&"--max-new-tokens") {
        args.extend(strings(&["--max-new-tokens", "3"]));
    }
    args.extend(strings(extra));
    args
}

fn marian_score() -> Vec<String> {
    let dir = fixture("marian").display().to_string();
    strings(&[
        "score",
        "--model",
        &dir,
        "--input-ids",
        "17,42,5,0",
        "--target-ids",
        "8,9,0",
    ])
}

/// `--forced-eos-token-id` is read (clap once panicked on every value), and forces the
/// last token.
#[test]
fn generate_forced_eos_option_forces_the_last_token() {
    let (ok, out, err) = run(&marian_generate(&[
        "--forced-eos-token-id",
        "3",
        "--format",
        "json",
    ]));
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let seq = v["sequences"][0].as_array().unwrap();
    assert_eq!(seq.len(), 4, "{out}");
    assert_eq!(seq[3], 3, "{out}");
}

/// Float options that would turn every score into NaN, ids past u32 and a token budget
/// that would wrap are refused with a message naming them.
#[test]
fn nan_and_wrapping_options_are_refused() {
    for (extra, want) in [
        (vec!["--length-penalty", "NaN"], "not a finite number"),
        (vec!["--repetition-penalty", "inf"], "not a finite number"),
        (vec!["--input-ids", "4294967296"], "4294967296"),
        (
            vec!["--max-new-tokens", "18446744073709551615"],
            "max_new_tokens 18446744073709551615",
        ),
    ] {
        let (ok, _, err) = run(&marian_generate(&extra));
        assert!(!ok, "{extra:?} succeeded");
        assert!(err.contains(want), "{extra:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{extra:?}: {err}");
    }
}

/// Runs `args` with stdout a pipe whose reader is gone before anything is written.
fn run_into_closed_pipe(args: &[String]) -> (Option<i32>, String) {
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_seqbridge"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run seqbridge");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `seqbridge generate … | head -c10`: the reader leaves, the command ends quietly with
/// the status of a tool killed by SIGPIPE (141), never a panic.
#[test]
fn generate_and_score_end_quietly_on_a_closed_pipe() {
    for args in [marian_generate(&["--format", "json"]), marian_score()] {
        let (code, err) = run_into_closed_pipe(&args);
        assert_eq!(code, Some(141), "{args:?}: {err}");
        assert!(err.trim().is_empty(), "{args:?}: {err}");
    }
}

/// `> /dev/full`: a clear one-line error, no panic.
#[cfg(target_os = "linux")]
#[test]
fn generate_and_score_report_a_full_disk() {
    for args in [marian_generate(&[]), marian_score()] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full");
        let out = Command::new(env!("CARGO_BIN_EXE_seqbridge"))
            .args(&args)
            .stdout(full)
            .output()
            .expect("run seqbridge");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("No space left on device"), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    }
}

/// An unwritable --output fails before the model is even looked at.
#[test]
fn translate_checks_the_output_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("no/such/dir/out.txt");
    let (ok, _, err) = run(&strings(&[
        "translate",
        "--model",
        "/nonexistent/model",
        "--output",
        output.to_str().unwrap(),
        "3 mars 1999",
    ]));
    assert!(!ok);
    assert!(
        err.contains("cannot write") && err.contains("out.txt"),
        "{err}"
    );
}

/// A run that fails leaves the old output file as it was (and nothing beside it); one that
/// succeeds replaces it, every line in input order across several length-sorted windows.
#[test]
fn translate_output_is_replaced_only_by_a_finished_run() {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in.txt"), dir.path().join("out.txt"));
    std::fs::write(&output, "old\n").unwrap();
    let days: Vec<String> = (1..=19)
        .map(|d| format!("{d} mars 19{:02}", 80 + d))
        .collect();
    std::fs::write(&input, days.join("\n") + "\n").unwrap();
    let args = |model: &str| {
        strings(&[
            "translate",
            "--model",
            model,
            "--input",
            input.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
            "--batch-size",
            "1",
        ])
    };
    let (ok, _, err) = run(&args("/nonexistent/model"));
    assert!(!ok);
    assert!(err.contains("left unchanged; 0 lines were done"), "{err}");
    assert_eq!(std::fs::read_to_string(&output).unwrap(), "old\n");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        2,
        "a temporary file was left"
    );

    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/date-normalizer");
    let (ok, _, err) = run(&args(model.to_str().unwrap()));
    assert!(ok, "{err}");
    let want: String = (1..=19)
        .map(|d| format!("19{:02}-03-{d:02}\n", 80 + d))
        .collect();
    assert_eq!(std::fs::read_to_string(&output).unwrap(), want);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

/// A misspelt backend is named, with the accepted ones (it once selected no backend and
/// reported "adapters present: []").
#[test]
fn a_bogus_backend_is_named() {
    let out = Command::new(env!("CARGO_BIN_EXE_seqbridge"))
        .arg("info")
        .env("SEQBRIDGE_BACKEND", "bogus")
        .output()
        .expect("run seqbridge");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("\"bogus\" is not a backend") && err.contains("vulkan, gl, metal, dx12"),
        "{err}"
    );
}

/// `seqbridge generate --source` on the multi-source fixtures: example 0's token ids beside
/// an image file give transformers' greedy sequence (tools/multi_source/make_fixtures.py)
/// and an `--align-png` heatmap; a source of an unknown kind and a missing source are named.
#[test]
fn generate_from_several_sources() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for name in ["concat-3", "separate-2"] {
        let dir = root.join("multi_source").join(name);
        let r: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
                .unwrap();
        let case = &r["from_file"];
        let image = root
            .join("vision/images")
            .join(case["image"].as_str().unwrap());
        let mut args = vec![
            "generate".to_string(),
            "--model".into(),
            dir.display().to_string(),
            "--format".into(),
            "json".into(),
            "--max-new-tokens".into(),
            case["kwargs"]["max_new_tokens"].to_string(),
        ];
        let kinds = r["kinds"].as_array().unwrap();
        for (kind, input) in kinds.iter().zip(r["inputs"].as_array().unwrap()) {
            args.push("--source".into());
            args.push(match kind.as_str().unwrap() {
                "text" => format!("ids:{}", ids_arg(&input[0])),
                _ => format!("image:{}", image.display()),
            });
        }
        let tmp = tempfile::tempdir().unwrap();
        let png = tmp.path().join("align.png");
        let mut with_png = args.clone();
        with_png.extend(["--align-png".into(), png.display().to_string()]);
        let (ok, stdout, stderr) = run(&with_png);
        assert!(ok, "{name}: {stderr}");
        let v: Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
        assert_eq!(v["sequences"], case["sequences"], "{name}");
        // The heatmap: a PNG whose IHDR height grows with the rows (a share row per source
        // and one per position: text tokens and the image's 10 positions).
        let bytes = std::fs::read(&png).unwrap();
        assert_eq!(&bytes[1..4], b"PNG", "{name}");
        let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
        let rows = kinds.len()
            + r["inputs"]
                .as_array()
                .unwrap()
                .iter()
                .zip(kinds)
                .map(|(x, k)| {
                    if k == "text" {
                        x[0].as_array().unwrap().len()
                    } else {
                        10
                    }
                })
                .sum::<usize>();
        assert!(
            height as usize >= rows * 16,
            "{name}: {height} px for {rows} rows"
        );

        let (ok, _, stderr) = run(&args[..args.len() - 2]);
        assert!(
            !ok && stderr.contains(&format!("reads {} sources", kinds.len())),
            "{stderr}"
        );
        let mut bad = args.clone();
        let last = bad.len() - 1;
        bad[last] = "audio:x.wav".into();
        let (ok, _, stderr) = run(&bad);
        assert!(!ok && stderr.contains("audio:x.wav"), "{stderr}");
    }
}

/// `seqbridge bench` on a multi-source model (text + image + text) makes random inputs for
/// each source and reports every source's length; separate blocks take more dispatches a
/// step than one concatenated cross-attention of the same decoder.
#[test]
fn bench_multi_source_model() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/multi_source");
    let mut dispatches = Vec::new();
    for name in ["concat-3", "separate-3"] {
        let dir = root.join(name).display().to_string();
        let (ok, out, err) = run(&[
            "bench".into(),
            "--model".into(),
            dir,
            "--new-tokens".into(),
            "3".into(),
            "--src-len".into(),
            "5".into(),
            "--batch".into(),
            "2".into(),
            "--iters".into(),
            "1".into(),
            "--warmup".into(),
            "0".into(),
            "--format".into(),
            "json".into(),
        ]);
        assert!(ok, "{name}: {err}");
        let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        assert_eq!(v["src_len"], serde_json::json!([5, 10, 5]), "{name}: {v}");
        assert!(v["step_ms_median"].as_f64().unwrap() > 0.0, "{name}: {v}");
        dispatches.push(v["dispatches_per_step"].as_f64().unwrap());
    }
    // 2 layers × 2 more blocks × (query with its norm in the prologue, attention, output)
    // at least.
    assert!(dispatches[1] >= dispatches[0] + 12.0, "{dispatches:?}");
}

/// `--constrain` decodes under the expression: the marian fixture gives transformers'
/// constrained output (tests/fixtures/constrained/reference.json); a bad expression is one
/// line naming it; `--constrain` and `--no-constrain` exclude each other.
#[test]
fn generate_and_translate_constrain() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/constrained/reference.json");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let pattern = r["pattern"].as_str().unwrap();
    let case = &r["cases"][0];
    let ids = ids_arg(&case["input_ids"]);
    let dir = fixture("marian").display().to_string();
    let (ok, out, err) = run(&strings(&[
        "generate",
        "--model",
        &dir,
        "--input-ids",
        &ids,
        "--num-beams",
        "1",
        "--constrain",
        pattern,
        "--format",
        "json",
    ]));
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["sequences"][0], case["greedy"]["sequence"], "{out}");
    let (ok, _, err) = run(&strings(&[
        "translate",
        "--constrain",
        "([0-9]",
        "1 May 2020",
    ]));
    assert!(
        !ok && err.contains("unclosed group") && err.trim().lines().count() == 1,
        "{err}"
    );
    let (ok, _, err) = run(&strings(&[
        "translate",
        "--constrain",
        "[0-9]+",
        "--no-constrain",
        "1 May 2020",
    ]));
    assert!(!ok && err.contains("--no-constrain"), "{err}");
}

/// `seqbridge ask` on the shipped shapes model (assets/shapes-qa) gives PyTorch's answer to
/// every held-out question (tools/multi_source/predict_shapes.py --reference), so its exact
/// match per question type is the one README reports; two questions about one image answer
/// in one batch and draw one overlay each; a model that does not read an image and a text
/// is refused by name.
#[test]
fn ask_answers_the_shipped_models_heldout_questions_as_pytorch_does() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let held = root.join("assets/shapes-qa/heldout");
    let r: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("tests/fixtures/shapes_qa/reference.json")).unwrap(),
    )
    .unwrap();
    let want = r["answers"].as_array().unwrap();
    let examples: Vec<Value> = std::fs::read_to_string(held.join("examples.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(examples.len(), want.len());
    let eval = held.join("examples.jsonl").display().to_string();
    let (ok, stdout, stderr) = run(&args(&["ask", "--eval", &eval, "--format", "json"]));
    assert!(ok, "{stderr}");
    let v: Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    for (kind, counts) in r["exact_match"].as_object().unwrap() {
        assert_eq!(
            v["exact_match"][kind]["right"], counts["right"],
            "{kind}: {}",
            v["exact_match"]
        );
        assert_eq!(v["exact_match"][kind]["total"], counts["total"], "{kind}");
    }
    // Every miss is PyTorch's miss, with PyTorch's answer.
    for w in v["wrong"].as_array().unwrap() {
        let i = examples
            .iter()
            .position(|e| {
                held.join(e["image"].as_str().unwrap())
                    .display()
                    .to_string()
                    == w["image"]
                    && e["question"] == w["question"]
            })
            .expect("a held-out example");
        assert_eq!(w["got"], want[i], "{w}");
    }

    let image = held.join(examples[0]["image"].as_str().unwrap());
    let (q0, q1) = (
        examples[0]["question"].as_str().unwrap(),
        "how many circles ?",
    );
    let tmp = tempfile::tempdir().unwrap();
    let png = tmp.path().join("ask.png");
    let image = image.display().to_string();
    let png_arg = png.display().to_string();
    let (ok, stdout, stderr) = run(&args(&["ask", &image, q0, q1, "--align-png", &png_arg]));
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(lines[0], want[0].as_str().unwrap());
    for i in 0..2 {
        let bytes = std::fs::read(tmp.path().join(format!("ask-{i}.png"))).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
    }

    let marian = root
        .join("tests/fixtures/models/marian")
        .display()
        .to_string();
    let (ok, _, stderr) = run(&args(&["ask", "--model", &marian, &image, q0]));
    assert!(
        !ok && stderr.contains("does not read an image and a question"),
        "{stderr}"
    );
}

/// `ask --eval` names the file and line of an entry that is not an example, and an empty
/// file, each in one line.
#[test]
fn ask_eval_names_a_bad_line() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("examples.jsonl");
    std::fs::write(
        &file,
        "{\"image\": \"a.png\", \"question\": \"q\", \"answer\": \"a\"}\n[1, 2]\n",
    )
    .unwrap();
    let path = file.display().to_string();
    let (ok, _, stderr) = run(&args(&["ask", "--eval", &path]));
    assert!(
        !ok && stderr.contains("examples.jsonl line 2") && stderr.lines().count() == 1,
        "{stderr}"
    );
    std::fs::write(&file, "\n").unwrap();
    let (ok, _, stderr) = run(&args(&["ask", "--eval", &path]));
    assert!(!ok && stderr.contains("no examples"), "{stderr}");
}
