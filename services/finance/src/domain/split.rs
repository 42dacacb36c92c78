//! Exact splits of an amount by weights (the largest remainder method), so that a
//! commission shared 70/30 and paid 50/50 over milestones adds up to the cent.
//!
//! Each part first gets its exact share rounded towards zero to the minor unit; the
//! minor units left over (fewer than the number of parts) go one each to the parts
//! whose shares lost the most, ties to the earlier part. Every part is within one
//! minor unit of its exact share, the parts sum exactly to the total, and the same
//! input always gives the same parts. A negative total (a clawback) is split as its
//! magnitude and every part negated, so −0.02 three ways is −0.01, −0.01, 0.00.
//!
//! The arithmetic is on whole minor units in `i128`, so no share is ever rounded
//! before it is compared.

use rust_decimal::Decimal;

/// Why an amount cannot be split exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    /// No weights: nothing to split between.
    #[error("there is nothing to split between")]
    NoWeights,
    /// A weight below zero.
    #[error("a weight is negative")]
    NegativeWeight,
    /// Every weight is zero.
    #[error("the weights sum to zero")]
    ZeroWeights,
    /// The total has more decimal places than the minor unit.
    #[error("{total} is not a whole number of units of {scale} decimal places")]
    NotInMinorUnits {
        /// The total asked for.
        total: Decimal,
        /// The minor unit's decimal places.
        scale: u32,
    },
    /// The total times a weight does not fit in 128 bits.
    #[error("the total and weights are too large to split exactly")]
    TooLarge,
}

/// Splits `total` into one part per weight, in proportion, to `scale` decimal
/// places: the parts sum exactly to `total` and each is written with `scale` places.
pub fn allocate(
    total: Decimal,
    weights: &[Decimal],
    scale: u32,
) -> Result<Vec<Decimal>, SplitError> {
    if weights.is_empty() {
        return Err(SplitError::NoWeights);
    }
    if weights.iter().any(|w| *w < Decimal::ZERO) {
        return Err(SplitError::NegativeWeight);
    }
    let units = whole_units(total, scale).ok_or(SplitError::NotInMinorUnits { total, scale })?;
    let common_scale = weights.iter().map(Decimal::scale).max().unwrap_or(0);
    let weights = weights
        .iter()
        .map(|w| whole_units(*w, common_scale))
        .collect::<Option<Vec<i128>>>()
        .ok_or(SplitError::TooLarge)?;
    let weight_sum = weights
        .iter()
        .try_fold(0i128, |sum, w| sum.checked_add(*w))
        .ok_or(SplitError::TooLarge)?;
    if weight_sum == 0 {
        return Err(SplitError::ZeroWeights);
    }

    // Exact share of part i: magnitude × w_i / weight_sum = floor_i + remainder_i / weight_sum.
    let magnitude = units.abs();
    let mut parts = Vec::with_capacity(weights.len());
    let mut remainders = Vec::with_capacity(weights.len());
    for w in &weights {
        let exact = magnitude.checked_mul(*w).ok_or(SplitError::TooLarge)?;
        parts.push(exact / weight_sum);
        remainders.push(exact % weight_sum);
    }
    let left_over = magnitude - parts.iter().sum::<i128>();
    let mut by_remainder: Vec<usize> = (0..parts.len()).collect();
    // Stable: equal remainders keep their order, so the earlier part wins a tie.
    by_remainder.sort_by(|a, b| remainders[*b].cmp(&remainders[*a]));
    for i in by_remainder
        .into_iter()
        .take(usize::try_from(left_over).unwrap_or(0))
    {
        parts[i] += 1;
    }

    parts
        .into_iter()
        .map(|p| {
            let signed = if units < 0 { -p } else { p };
            Decimal::try_from_i128_with_scale(signed, scale).map_err(|_| SplitError::TooLarge)
        })
        .collect()
}

/// `value` as a whole number of units of `scale` decimal places (1.50 at 2 → 150),
/// or none when it has finer digits or does not fit.
fn whole_units(value: Decimal, scale: u32) -> Option<i128> {
    let value = value.normalize();
    let finer_by = scale.checked_sub(value.scale())?;
    value.mantissa().checked_mul(10i128.checked_pow(finer_by)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn ds(list: &[&str]) -> Vec<Decimal> {
        list.iter().map(|s| d(s)).collect()
    }

    fn split(total: &str, weights: &[&str], scale: u32) -> Vec<String> {
        allocate(d(total), &ds(weights), scale)
            .unwrap()
            .iter()
            .map(Decimal::to_string)
            .collect()
    }

    #[test]
    fn splits_sum_exactly_with_leftover_units_to_the_largest_remainders() {
        // (total, weights, scale, parts)
        let table: &[(&str, &[&str], u32, &[&str])] = &[
            ("0.01", &["1", "1", "1"], 2, &["0.01", "0.00", "0.00"]),
            ("0.02", &["1", "1", "1"], 2, &["0.01", "0.01", "0.00"]),
            ("-0.01", &["1", "1", "1"], 2, &["-0.01", "0.00", "0.00"]),
            ("-0.02", &["1", "1", "1"], 2, &["-0.01", "-0.01", "0.00"]),
            ("100.00", &["1", "1", "1"], 2, &["33.34", "33.33", "33.33"]),
            (
                "100.00",
                &["33.33", "33.33", "33.34"],
                2,
                &["33.33", "33.33", "33.34"],
            ),
            // 0.333… and 0.666…: the second lost more, so it gets the cent.
            ("1.00", &["1", "2"], 2, &["0.33", "0.67"]),
            ("10980.00", &["70", "30"], 2, &["7686.00", "3294.00"]),
            ("7686.00", &["50", "50"], 2, &["3843.00", "3843.00"]),
            ("1000", &["1", "1", "1"], 0, &["334", "333", "333"]),
            ("0.00", &["25", "75"], 2, &["0.00", "0.00"]),
            ("5", &["0", "1"], 2, &["0.00", "5.00"]),
            ("0.07", &["3"], 2, &["0.07"]),
        ];
        for (total, weights, scale, parts) in table {
            assert_eq!(
                split(total, weights, *scale),
                *parts,
                "{total} by {weights:?}"
            );
        }
    }

    #[test]
    fn what_cannot_be_split_exactly_is_refused() {
        assert_eq!(allocate(d("1"), &[], 2), Err(SplitError::NoWeights));
        assert_eq!(
            allocate(d("1"), &ds(&["1", "-1"]), 2),
            Err(SplitError::NegativeWeight)
        );
        assert_eq!(
            allocate(d("1"), &ds(&["0", "0.00"]), 2),
            Err(SplitError::ZeroWeights)
        );
        assert_eq!(
            allocate(d("0.005"), &ds(&["1"]), 2),
            Err(SplitError::NotInMinorUnits {
                total: d("0.005"),
                scale: 2
            })
        );
        assert_eq!(
            allocate(Decimal::MAX, &[Decimal::MAX, Decimal::MAX], 0),
            Err(SplitError::TooLarge)
        );
        assert_eq!(
            allocate(Decimal::MAX, &ds(&["1"]), 2),
            Err(SplitError::TooLarge)
        );
    }

    /// A total of up to ±10¹² minor units at 0 to 2 decimal places, and 1 to 8
    /// weights with up to 3 decimal places, not all zero.
    fn case() -> impl proptest::strategy::Strategy<Value = (Decimal, Vec<Decimal>, u32)> {
        use proptest::prelude::*;
        let weight = (0..=100_000i64, 0..=3u32).prop_map(|(m, s)| Decimal::new(m, s));
        (
            -1_000_000_000_000i64..=1_000_000_000_000,
            0..=2u32,
            proptest::collection::vec(weight, 1..=8),
        )
            .prop_filter("some weight above zero", |(_, _, w)| {
                w.iter().any(|w| !w.is_zero())
            })
            .prop_map(|(units, scale, weights)| (Decimal::new(units, scale), weights, scale))
    }

    proptest::proptest! {
        #[test]
        fn parts_sum_to_the_total_each_within_one_unit_of_its_exact_share(
            (total, weights, scale) in case(),
        ) {
            let parts = allocate(total, &weights, scale).unwrap();
            proptest::prop_assert_eq!(parts.len(), weights.len());
            proptest::prop_assert_eq!(parts.iter().sum::<Decimal>(), total);
            let unit = Decimal::new(1, scale);
            let weight_sum: Decimal = weights.iter().sum();
            for (part, weight) in parts.iter().zip(&weights) {
                proptest::prop_assert_eq!(part.scale(), scale);
                // |part − total × w / W| < unit, multiplied through by W to stay exact.
                let off = (*part * weight_sum - total * *weight).abs();
                proptest::prop_assert!(off < unit * weight_sum, "{} of {} by {:?}", part, total, weights);
                // Never on the other side of zero from the total.
                proptest::prop_assert!(part.is_zero() || part.is_sign_negative() == total.is_sign_negative());
            }
        }

        #[test]
        fn the_same_split_is_given_every_time_and_equal_weights_favour_the_earlier(
            (total, weights, scale) in case(),
        ) {
            let parts = allocate(total, &weights, scale).unwrap();
            proptest::prop_assert_eq!(&allocate(total, &weights, scale).unwrap(), &parts);
            for i in 0..weights.len() {
                for j in i + 1..weights.len() {
                    if weights[i] == weights[j] {
                        proptest::prop_assert!(parts[i].abs() >= parts[j].abs());
                    }
                }
            }
        }
    }
}
