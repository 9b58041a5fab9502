// Helpers composed in front of every kernel (after the generated constants and Params).

// Linear workgroup index of a grid spread over x and y: one dimension holds at most
// maxComputeWorkgroupsPerDimension groups, so launchers fold large grids into two.
fn group_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

// Element i of f16 data stored two to a u32 word (low half first), widened to f32.
fn half_at(word: u32, i: u32) -> f32 {
    let pair = unpack2x16float(word);
    return select(pair.x, pair.y, (i & 1u) == 1u);
}
