//! Brent's root finder exactly as R's `uniroot` runs it (`R_zeroin2` in
//! `src/library/stats/src/zeroin.c`): same steps, same tolerance rule, so
//! results that R reports with `tol = 1e-4` are reproduced to the last digit.

/// Outcome of [`zeroin`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Root {
    /// The approximate root.
    pub root: f64,
    /// Iterations used.
    pub iterations: u32,
    /// Whether the tolerance was met within `max_iter`.
    pub converged: bool,
}

/// Finds a root of `f` in `[ax, bx]` given `fa = f(ax)` and `fb = f(bx)` of
/// opposite signs (or one of them zero), to tolerance `tol`.
pub fn zeroin(
    ax: f64,
    bx: f64,
    fa: f64,
    fb: f64,
    mut f: impl FnMut(f64) -> f64,
    tol: f64,
    max_iter: u32,
) -> Root {
    let (mut a, mut b, mut fa, mut fb) = (ax, bx, fa, fb);
    let (mut c, mut fc) = (a, fa);
    if fa == 0.0 {
        return Root {
            root: a,
            iterations: 0,
            converged: true,
        };
    }
    if fb == 0.0 {
        return Root {
            root: b,
            iterations: 0,
            converged: true,
        };
    }
    for iteration in 0..=max_iter {
        let prev_step = b - a;
        if fc.abs() < fb.abs() {
            // Make b the best approximation.
            a = b;
            b = c;
            c = a;
            fa = fb;
            fb = fc;
            fc = fa;
        }
        let tol_act = 2.0 * f64::EPSILON * b.abs() + tol / 2.0;
        let mut new_step = (c - b) / 2.0;
        if new_step.abs() <= tol_act || fb == 0.0 {
            return Root {
                root: b,
                iterations: iteration,
                converged: true,
            };
        }
        if prev_step.abs() >= tol_act && fa.abs() > fb.abs() {
            let cb = c - b;
            let (mut p, mut q);
            if a == c {
                // Linear interpolation.
                let t1 = fb / fa;
                p = cb * t1;
                q = 1.0 - t1;
            } else {
                // Inverse quadratic interpolation.
                let qq = fa / fc;
                let t1 = fb / fc;
                let t2 = fb / fa;
                p = t2 * (cb * qq * (qq - t1) - (b - a) * (t1 - 1.0));
                q = (qq - 1.0) * (t1 - 1.0) * (t2 - 1.0);
            }
            if p > 0.0 {
                q = -q;
            } else {
                p = -p;
            }
            if p < 0.75 * cb * q - (tol_act * q).abs() / 2.0 && p < (prev_step * q / 2.0).abs() {
                new_step = p / q;
            }
        }
        if new_step.abs() < tol_act {
            new_step = if new_step > 0.0 { tol_act } else { -tol_act };
        }
        a = b;
        fa = fb;
        b += new_step;
        fb = f(b);
        if (fb > 0.0 && fc > 0.0) || (fb < 0.0 && fc < 0.0) {
            c = a;
            fc = fa;
        }
    }
    Root {
        root: b,
        iterations: max_iter,
        converged: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_sqrt_two() {
        let f = |x: f64| x * x - 2.0;
        let r = zeroin(0.0, 2.0, f(0.0), f(2.0), f, 1e-12, 1000);
        assert!(r.converged);
        assert!((r.root - std::f64::consts::SQRT_2).abs() < 1e-11);
    }
}
