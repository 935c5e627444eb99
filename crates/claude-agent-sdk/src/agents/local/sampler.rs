//! [`Sampling`]: how the next token is picked from the logits — greedy by
//! default (so a run is reproducible on one machine), or temperature and
//! nucleus (top-p) sampling from a seeded generator — after a repetition
//! penalty over the recent tokens.
//!
//! Small models repeat themselves; the penalty (llama.cpp's: a positive logit
//! is divided by it, a negative one multiplied) over the last
//! [`Sampling::penalty_window`] tokens is the cheap cure.

use std::collections::HashSet;

/// Sampling settings.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sampling {
    /// 0 is greedy.
    pub(crate) temperature: f32,
    /// Nucleus sampling's probability mass, in `(0, 1]`.
    pub(crate) top_p: f32,
    /// The generator's seed.
    pub(crate) seed: u64,
    /// 1 is none.
    pub(crate) repetition_penalty: f32,
    /// How many of the latest tokens the penalty looks at.
    pub(crate) penalty_window: usize,
}

impl Default for Sampling {
    fn default() -> Self {
        Self {
            temperature: 0.0,
            top_p: 1.0,
            seed: 42,
            repetition_penalty: 1.0,
            penalty_window: 64,
        }
    }
}

/// Picks tokens for one generation.
pub(crate) struct Sampler {
    settings: Sampling,
    rng: fastrand::Rng,
}

impl Sampler {
    pub(crate) fn new(settings: Sampling) -> Self {
        let rng = fastrand::Rng::with_seed(settings.seed);
        Self { settings, rng }
    }

    /// The next token, given the logits and the tokens so far.
    pub(crate) fn next(&mut self, logits: &mut [f32], history: &[u32]) -> u32 {
        let s = &self.settings;
        if (s.repetition_penalty - 1.0).abs() > f32::EPSILON {
            let recent = &history[history.len().saturating_sub(s.penalty_window)..];
            let seen: HashSet<u32> = recent.iter().copied().collect();
            for id in seen {
                if let Some(l) = logits.get_mut(id as usize) {
                    *l = if *l > 0.0 {
                        *l / s.repetition_penalty
                    } else {
                        *l * s.repetition_penalty
                    };
                }
            }
        }
        if s.temperature <= 0.0 {
            return argmax(logits);
        }
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut probs: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .filter_map(|(i, &l)| {
                let p = ((l - max) / s.temperature).exp();
                u32::try_from(i).ok().map(|i| (i, p))
            })
            .collect();
        probs.sort_by(|a, b| b.1.total_cmp(&a.1));
        let total: f32 = probs.iter().map(|p| p.1).sum();
        let mut kept = 0.0;
        let mut cut = probs.len();
        for (i, p) in probs.iter().enumerate() {
            kept += p.1 / total;
            if kept >= s.top_p {
                cut = i + 1;
                break;
            }
        }
        probs.truncate(cut.max(1));
        let mass: f32 = probs.iter().map(|p| p.1).sum();
        let mut r = self.rng.f32() * mass;
        for &(id, p) in &probs {
            r -= p;
            if r <= 0.0 {
                return id;
            }
        }
        probs.last().map_or(0, |p| p.0)
    }
}

fn argmax(logits: &[f32]) -> u32 {
    let mut best = (0usize, f32::NEG_INFINITY);
    for (i, &l) in logits.iter().enumerate() {
        if l > best.1 {
            best = (i, l);
        }
    }
    u32::try_from(best.0).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_the_largest_and_the_penalty_pushes_repeats_down() {
        let mut s = Sampler::new(Sampling::default());
        assert_eq!(s.next(&mut [0.1, 3.0, 2.0], &[1]), 1);
        let mut penalised = Sampler::new(Sampling {
            repetition_penalty: 2.0,
            ..Sampling::default()
        });
        assert_eq!(penalised.next(&mut [0.1, 3.0, 2.0], &[1]), 2);
    }

    #[test]
    fn seeded_sampling_is_reproducible_and_top_p_cuts_the_tail() {
        let settings = Sampling {
            temperature: 1.0,
            top_p: 0.5,
            ..Sampling::default()
        };
        let logits = [5.0, 0.0, 0.0, 0.0];
        let mut a = Sampler::new(settings.clone());
        let mut b = Sampler::new(settings);
        for _ in 0..20 {
            let x = a.next(&mut logits.clone(), &[]);
            assert_eq!(x, b.next(&mut logits.clone(), &[]));
            assert_eq!(x, 0, "top-p 0.5 keeps only the dominant token");
        }
    }
}
