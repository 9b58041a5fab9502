fn main() -> std::process::ExitCode {
    seqbridge_cli::main()
}
