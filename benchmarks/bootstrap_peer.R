# bootMer timing for benchmarks/bootstrap_bench.py (the lme4 side of one ABAB round).
#
#   Rscript bootstrap_peer.R DATA.csv NSIM SEED
#
# Fits lmer(y ~ x + (1|g), REML=FALSE) (not timed), then times
# bootMer(fit, FUN, nsim=NSIM, seed=SEED, type="parametric", use.u=FALSE) with the
# statistic of tests/reference/peers/bootstrap_lme4.R (fixed effects, sigma, VarCorr SDs),
# counting the deviance evaluations of every refit. Last line:
#   RESULT {"time": <s>, "n_fail": <n>, "sd_x": <sd>, "n_eval": <n>}
suppressPackageStartupMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
df <- read.csv(args[[1]])
nsim <- as.integer(args[[2]])
seed <- as.integer(args[[3]])
fit <- lmer(y ~ x + (1 | g), data = df, REML = FALSE)
FUN <- function(m) {
  n_eval <<- n_eval + m@optinfo$feval
  c(fixef(m), sigma(m), as.data.frame(VarCorr(m))$sdcor)
}
n_eval <- 0
invisible(bootMer(fit, FUN, nsim = 5, seed = 99, type = "parametric", use.u = FALSE))  # warm-up
n_eval <- 0
tm <- system.time(bb <- bootMer(fit, FUN, nsim = nsim, seed = seed, type = "parametric", use.u = FALSE))
n_fail <- sum(!stats::complete.cases(bb$t))
cat(sprintf('RESULT {"time": %.6f, "n_fail": %d, "sd_x": %.10g, "n_eval": %d}\n',
            tm[["elapsed"]], n_fail, sd(bb$t[, 2]), as.integer(n_eval)))
