//! What the benchmarks share.

/// `n` cookies as a browser sends them: three in five are credentials of federation EXAMPLE
/// (one in three of those is alice's, the ones `DACS_USERNAME=alice` selects), the others
/// belong to other apps. `n = 50` is the realistic signout: 30 credentials, 10 selected,
/// 20 unrelated. Under the 64 KiB cap up to n = 1,000.
pub fn jar(n: usize) -> String {
    let users = ["alice", "bob", "carol"];
    let mut credentials = 0;
    let mut pairs = Vec::with_capacity(n);
    for i in 0..n {
        if i % 5 < 3 {
            let k = credentials;
            credentials += 1;
            pairs.push(format!("DACS:EXAMPLE::J{}:{}={}", k / 3, users[k % 3], "Q".repeat(40)));
        } else {
            pairs.push(format!("_ga_{i}=GA1.2.{}.{}", 1_000_000 + i, 1_600_000_000 + i));
        }
    }
    pairs.join("; ")
}
