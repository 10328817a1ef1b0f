//! Robust statistics: median and median absolute deviation.

/// The median of `xs` (the mean of the middle two for an even count);
/// `None` when empty.
pub fn median(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// The median absolute deviation from the median; `None` when empty.
/// `1.4826 · MAD` estimates the standard deviation of normal data.
pub fn mad(xs: &[f64]) -> Option<f64> {
    let m = median(xs)?;
    median(&xs.iter().map(|x| (x - m).abs()).collect::<Vec<_>>())
}

/// The factor that makes the MAD a consistent estimator of σ for normal data.
pub const MAD_SIGMA: f64 = 1.4826;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_mad_match_hand_computed_values() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        // |x − 2| = 1, 1, 0, 0, 2, 4, 7 → MAD 1.
        assert_eq!(mad(&[1.0, 1.0, 2.0, 2.0, 4.0, 6.0, 9.0]), Some(1.0));
        // One wild value moves neither.
        let mut xs = vec![10.0; 20];
        xs.push(1e9);
        assert_eq!((median(&xs), mad(&xs)), (Some(10.0), Some(0.0)));
    }
}
