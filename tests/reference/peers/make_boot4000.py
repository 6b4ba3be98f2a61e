"""Write data/boot4000.csv: a seeded two-level random-intercept data set.

200 groups x 20 rows; x ~ N(0, 1); u_g ~ N(0, 1); e ~ N(0, 2^2);
y = 1 + 0.5 x + u_g + e.  Draws, in this order, from
numpy.random.default_rng(12345): x (4000), u (200), e (4000).
Run from anywhere: python make_boot4000.py
"""
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    rng = np.random.default_rng(12345)
    n_g, n_per = 200, 20
    g = np.repeat(np.arange(1, n_g + 1), n_per)
    x = rng.normal(0.0, 1.0, n_g * n_per)
    u = rng.normal(0.0, 1.0, n_g)
    e = rng.normal(0.0, 2.0, n_g * n_per)
    y = 1.0 + 0.5 * x + u[g - 1] + e
    with open(os.path.join(HERE, "data", "boot4000.csv"), "w") as fh:
        fh.write("g,x,y\n")
        for gi, xi, yi in zip(g, x, y):
            fh.write(f"{gi},{float(xi)!r},{float(yi)!r}\n")


if __name__ == "__main__":
    main()
