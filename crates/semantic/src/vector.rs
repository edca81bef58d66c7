//! Vector arithmetic shared by embedders and indexes.

use crate::{Error, Result};

/// The dot product of two equally long vectors.
///
/// Eight independent accumulators let the compiler vectorize the loop (a single running sum
/// cannot be reordered, so it stays scalar).
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0f32; 8];
    let (ca, ra) = a.split_at(a.len() - a.len() % 8);
    let (cb, rb) = b.split_at(ca.len());
    for (x, y) in ca.chunks_exact(8).zip(cb.chunks_exact(8)) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

/// Scales `v` to unit length in place.
///
/// A vector with a non-finite component or a zero norm has no direction, so it is an
/// [`Error::InvalidInput`] rather than a silent NaN.
pub(crate) fn normalize(v: &mut [f32]) -> Result<()> {
    if v.iter().any(|x| !x.is_finite()) {
        return Err(Error::InvalidInput(
            "vector has a NaN or infinite component".into(),
        ));
    }
    let norm = v
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return Err(Error::InvalidInput("vector has zero length".into()));
    }
    v.iter_mut()
        .for_each(|x| *x = (f64::from(*x) / norm) as f32);
    Ok(())
}

/// Maps the cosine of two unit vectors to the crate's similarity convention: clamped to
/// [0, 1]. See [`crate::index`] for why clamping rather than `(1 + cos) / 2`.
pub(crate) fn similarity(cos: f32) -> f32 {
    cos.clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_naive_sum_for_every_tail_length() {
        for n in 0..20 {
            let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 2.0).collect();
            let b: Vec<f32> = (0..n).map(|i| 1.0 - i as f32 * 0.25).collect();
            let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - naive).abs() < 1e-4, "n = {n}");
        }
    }

    #[test]
    fn normalize_rejects_zero_and_non_finite_vectors() {
        assert!(matches!(
            normalize(&mut [0.0, 0.0]),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            normalize(&mut [f32::NAN, 1.0]),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            normalize(&mut [f32::INFINITY, 1.0]),
            Err(Error::InvalidInput(_))
        ));
        let mut v = [3.0, 4.0];
        normalize(&mut v).unwrap();
        assert_eq!(v, [0.6, 0.8]);
    }
}
