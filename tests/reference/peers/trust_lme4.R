## trust_lme4.R -- lme4 reference values: lme4's own `mix1` test model (with
## statsmodels beside it), standard ML/REML fits, precision weights, and what
## lme4 does with degenerate models.  Writes trust_lme4.json (and data/*.csv).
## Run from the repository root:  Rscript tests/reference/peers/trust_lme4.R
suppressPackageStartupMessages(library(lme4))
args0 <- commandArgs(FALSE)
source(file.path(dirname(normalizePath(sub("^--file=", "", args0[grep("^--file=", args0)]))), "_json.R"))

write_csv17 <- function(d, path) {
  ## full double precision; integers and strings as they are
  d2 <- as.data.frame(lapply(d, function(col) {
    if (is.double(col)) sprintf("%.17g", col) else as.character(col)
  }), stringsAsFactors = FALSE)
  write.csv(d2, path, row.names = FALSE, quote = FALSE)
}

out <- list(
  how = paste(
    "Reference values from R's lme4 (and, for mix1, statsmodels MixedLM) produced by",
    "tests/reference/peers/trust_lme4.R. Each entry carries the exact call (r_call /",
    "python_call) that produced it; the data objects named in the calls are loaded as shown",
    "in 'data'. Fields: llf = logLik (REML fits: the restricted log-likelihood, lme4's",
    "constant), fe/fe_se = fixef and sqrt(diag(vcov)) under Stata names (_cons last),",
    "re = VarCorr variances/covariances under Stata labels (level:var(term),",
    "level:cov(slope,_cons), Residual:var(Residual)), sigma2 = sigma(fit)^2, varcorr =",
    "as.data.frame(VarCorr(fit), order='lower.tri'), theta = getME(fit,'theta'),",
    "isSingular = isSingular(fit), warnings/messages as emitted during the fit. 'tight' (in every",
    "non-degenerate fit) repeats llf/fe/fe_se/re/sigma2/theta for update(fit, control=",
    "lmerControl(optimizer='bobyqa', optCtrl=list(rhoend=1e-10))), a tighter optimum than lme4's",
    "default nloptwrap tolerances give; prefer it as the reference for variance parameters."),
  versions = c(versions(), list(statsmodels = NA_character_)),
  data = list(
    pig = 'pig <- read.csv("mixedlm_ext/datasets/pig.csv")',
    sleep = 'sleep <- read.csv("mixedlm_ext/datasets/sleepstudy.csv")',
    pen = 'pen <- read.csv("mixedlm_ext/datasets/penicillin.csv")',
    mix1 = 'd <- read.csv("tests/reference/peers/data/mix1.csv"); d$var1 <- factor(d$var1); d$var3 <- factor(d$var3)',
    pigw = 'pigw <- read.csv("tests/reference/peers/data/pig_w.csv")  # w = 1 + (week %% 3)',
    sleepw = 'sleepw <- read.csv("tests/reference/peers/data/sleepstudy_w.csv")  # w = 1/(1 + days/3)')
)

pig <- read.csv(dataset_path("pig"))
sleep <- read.csv(dataset_path("sleepstudy"))
pen <- read.csv(dataset_path("penicillin"))

## ---------------------------------------------------------------- (a) mix1
## lme4 tests/testthat/test-lmer.R, test_that("coef_lmer"): the file sets the
## pre-R-3.6 sample() algorithm at the top:
##   if ("sample.kind" %in% names(formals(RNGkind)))
##       suppressWarnings(RNGkind("Mersenne-Twister", "Inversion", "Rounding"))
## and the test expects fixef(mix1) = 0.2703951, 0.3832911, ... (tolerance 6e-6).
gen_mix1 <- paste(
  'suppressWarnings(RNGkind("Mersenne-Twister", "Inversion", "Rounding"))',
  'set.seed(101)',
  'd <- data.frame(resp=runif(100),',
  '                var1=factor(sample(1:5,size=100,replace=TRUE)),',
  '                var2=runif(100),',
  '                var3=factor(sample(1:5,size=100,replace=TRUE)))', sep = "\n")
eval(parse(text = gen_mix1))
RNGkind("default", "default", "default")
d_gen <- d
write_csv17(data.frame(resp = d$resp, var1 = as.integer(as.character(d$var1)),
                       var2 = d$var2, var3 = as.integer(as.character(d$var3))),
            peer_data_path("mix1.csv"))
d <- read.csv(peer_data_path("mix1.csv")); d$var1 <- factor(d$var1); d$var3 <- factor(d$var3)
stopifnot(identical(d$resp, d_gen$resp), identical(d$var2, d_gen$var2),
          identical(levels(d$var1), levels(d_gen$var1)), all(d$var1 == d_gen$var1), all(d$var3 == d_gen$var3))

mix1_rec <- function(call) {
  r <- eval_call(call); f <- r$value
  c(fit_record(f, call, warnings = r$warnings, messages = r$messages),
    list(var_intercept = as.data.frame(VarCorr(f))$vcov[1]))
}
c_reml <- "lmer(resp ~ 0 + var1 + var1:var2 + (1|var3), data=d)"
c_ml <- "lmer(resp ~ 0 + var1 + var1:var2 + (1|var3), data=d, REML=FALSE)"
## R puts its own LD_LIBRARY_PATH in the environment; a python linked against a
## shared libpython can then pick up the wrong one, so drop it for the child.
sm_json <- system2("env", c("-u", "LD_LIBRARY_PATH", Sys.getenv("PEERS_PYTHON", "python"),
                            shQuote(file.path(peers_dir(), "trust_lme4_mix1_statsmodels.py"))), stdout = TRUE)
sm <- jsonlite::fromJSON(paste(sm_json, collapse = ""), simplifyVector = FALSE)
out$versions$statsmodels <- sm$statsmodels
sm$statsmodels <- NULL
out$mix1 <- list(
  source = paste("lme4 tests/testthat/test-lmer.R, test_that('coef_lmer') (github:lme4/lme4 @",
                 "32b5bfdc); mix1 <- lmer(resp ~ 0 + var1 + var1:var2 + (1|var3), data=d) is REML."),
  data_generation = gen_mix1,
  data_csv = "data/mix1.csv (var1, var3 stored as integers 1..5; converted with factor())",
  test_expected_fixef = c(var11 = 0.2703951, var12 = 0.3832911, var13 = 0.451279, var14 = 0.6528842,
                          var15 = 0.6109819, "var11:var2" = 0.4949802, "var12:var2" = 0.1222705,
                          "var13:var2" = 0.08702069, "var14:var2" = -0.2856431, "var15:var2" = -0.01596725),
  REML = mix1_rec(c_reml),
  ML = mix1_rec(c_ml),
  statsmodels = sm,
  note = paste("REML: variance of the var3 intercept is tiny (~0.000904) against sigma^2 ~0.0889,",
               "llf -27.52115. ML: the var3 variance goes to the boundary (0; isSingular TRUE).")
)

## ------------------------------------------------------ (b) standard fits
std <- list(
  sleepstudy_un = list(stata = "mixed reaction days || subject: days, covariance(unstructured)",
                       call = "lmer(reaction ~ days + (days|subject), data=sleep, REML=%s)"),
  pig_ri = list(stata = "mixed weight week || id:",
                call = "lmer(weight ~ week + (1|id), data=pig, REML=%s)"),
  penicillin_crossed = list(stata = "mixed diameter || _all: R.plate || _all: R.sample",
                            call = "lmer(diameter ~ 1 + (1|plate) + (1|sample), data=pen, REML=%s)",
                            cross = c("plate", "sample"))
)
out$standard <- list()
for (nm in names(std)) {
  s <- std[[nm]]
  for (meth in c("ML", "REML")) {
    call <- sprintf(s$call, if (meth == "ML") "FALSE" else "TRUE")
    r <- eval_call(call)
    rec <- fit_record(r$value, call, cross = if (is.null(s$cross)) character() else s$cross,
                      warnings = r$warnings, messages = r$messages)
    out$standard[[paste0(nm, "_", tolower(meth))]] <- c(list(stata = paste0(s$stata, if (meth == "REML") ", reml" else "")), rec)
  }
}

## -------------------------------------------------- (c) precision weights
pigw <- pig; pigw$w <- 1 + (pigw$week %% 3)
sleepw <- sleep; sleepw$w <- 1 / (1 + sleepw$days / 3)
write_csv17(pigw, peer_data_path("pig_w.csv"))
write_csv17(sleepw, peer_data_path("sleepstudy_w.csv"))
pigw <- read.csv(peer_data_path("pig_w.csv")); sleepw <- read.csv(peer_data_path("sleepstudy_w.csv"))
stopifnot(identical(sleepw$w, 1 / (1 + sleepw$days / 3)), all(pigw$w == 1 + (pigw$week %% 3)))

## Dense Gaussian log-likelihood at lme4's estimates:
## V = Z G Z' + sigma^2 W^{-1}, G = sigma^2 Lambda Lambda'.
dense_ll <- function(fit, w) {
  y <- getME(fit, "y"); X <- getME(fit, "X"); Z <- as.matrix(t(getME(fit, "Zt")))
  L <- as.matrix(getME(fit, "Lambda")); s2 <- sigma(fit)^2
  V <- s2 * (Z %*% L %*% t(L) %*% t(Z)) + s2 * diag(1 / w)
  r <- y - X %*% fixef(fit)
  ch <- chol(V); logdetV <- 2 * sum(log(diag(ch)))
  Vi <- chol2inv(ch)
  q <- drop(t(r) %*% Vi %*% r); n <- length(y); p <- ncol(X)
  ml <- -0.5 * (n * log(2 * pi) + logdetV + q)
  XtViX <- t(X) %*% Vi %*% X
  reml <- -0.5 * ((n - p) * log(2 * pi) + logdetV + as.numeric(determinant(XtViX)$modulus) + q)
  list(ml = ml, reml = reml)
}
wfits <- list(
  pig_w_ri = list(stata = NULL, structure = "mixed weight week || id:",
                  call = "lmer(weight ~ week + (1|id), data=pigw, weights=w, REML=%s)", d = "pigw"),
  sleepstudy_w_un = list(stata = NULL, structure = "mixed reaction days || subject: days, covariance(unstructured)",
                         call = "lmer(reaction ~ days + (days|subject), data=sleepw, weights=w, REML=%s)", d = "sleepw")
)
out$weights <- list(
  definition = paste(
    "lmer(..., weights=w): residual variance sigma^2/w_i. dense_* are the Gaussian",
    "log-likelihoods computed in R with V = Z G Z' + sigma^2 W^-1 (G = sigma^2 Lambda Lambda')",
    "at lme4's estimates (dense_ml = -0.5[n log 2pi + log|V| + r'V^-1 r]; dense_reml adds",
    "-0.5 log|X'V^-1X| and uses (n-p) log 2pi). dense_*_minus_half_sum_log_w subtracts",
    "0.5*sum(log w), i.e. is the likelihood of the unit-weight form. 'includes_half_sum_log_w'",
    "says whether logLik(fit) matches dense_* (TRUE) or the version without 0.5*sum(log w)."))
for (nm in names(wfits)) {
  s <- wfits[[nm]]
  for (meth in c("ML", "REML")) {
    call <- sprintf(s$call, if (meth == "ML") "FALSE" else "TRUE")
    r <- eval_call(call); f <- r$value
    rec <- fit_record(f, call, warnings = r$warnings, messages = r$messages)
    w <- get(s$d)$w
    dl <- dense_ll(f, w)
    dd <- if (meth == "ML") dl$ml else dl$reml
    hs <- 0.5 * sum(log(w))
    rec$dense_llf <- dd
    rec$half_sum_log_w <- hs
    rec$dense_llf_minus_half_sum_log_w <- dd - hs
    rec$includes_half_sum_log_w <- abs(rec$llf - dd) < 1e-7 * abs(dd)
    rec$abs_diff_llf_dense <- abs(rec$llf - dd)
    rec$abs_diff_llf_dense_minus_half_sum_log_w <- abs(rec$llf - (dd - hs))
    out$weights[[paste0(nm, "_", tolower(meth))]] <- c(
      list(stata = NULL, stata_note = paste("Stata's mixed has no precision (analytic) weights;",
                                            "the model structure is", s$structure)), rec)
  }
}

## ---------------------------------------------------- (d) degenerate models
RNGkind("default", "default", "default")
set.seed(20240607)
n <- 40
deg_crossed <- data.frame(a = rep(paste0("a", 1:4), each = 10), id = sprintf("r%02d", 1:n), x = round(rnorm(n), 6))
deg_crossed$y <- round(1 + 0.5 * deg_crossed$x + rep(rnorm(4), each = 10) + rnorm(n), 6)
deg_onegroup <- data.frame(g = "g1", x = round(runif(30, 0, 10), 6))
deg_onegroup$y <- round(2 + 0.3 * deg_onegroup$x + rnorm(30), 6)
deg_const <- data.frame(g = rep(paste0("g", 1:8), each = 5), x = round(rnorm(40), 6))
deg_const$y <- rep(round(10 + rnorm(8), 6), each = 5)
write.csv(deg_crossed, peer_data_path("degenerate_crossed_unique.csv"), row.names = FALSE, quote = FALSE)
write.csv(deg_onegroup, peer_data_path("degenerate_one_group.csv"), row.names = FALSE, quote = FALSE)
write.csv(deg_const, peer_data_path("degenerate_y_const_within.csv"), row.names = FALSE, quote = FALSE)
dc <- read.csv(peer_data_path("degenerate_crossed_unique.csv"))
d1 <- read.csv(peer_data_path("degenerate_one_group.csv"))
dk <- read.csv(peer_data_path("degenerate_y_const_within.csv"))

deg_rec <- function(call, what) {
  r <- eval_call(call)
  f <- r$value
  base <- list(what = what, r_call = call)
  if (inherits(f, "fit_error"))
    return(c(base, list(outcome = "error", error = f$message, warnings = jarray(r$warnings),
                        messages = jarray(r$messages))))
  rec <- fit_record(f, call, warnings = r$warnings, messages = r$messages, tight = FALSE)
  c(base, list(outcome = "fit"), rec[setdiff(names(rec), "r_call")])
}
out$degenerate <- list(
  data = list(
    generation = paste("set.seed(20240607) (R default RNG), in trust_lme4.R; files:",
                       "data/degenerate_crossed_unique.csv (a: 4 levels x 10 rows, id unique per row),",
                       "data/degenerate_one_group.csv (30 rows, g a single level),",
                       "data/degenerate_y_const_within.csv (8 groups x 5 rows, y constant within g, x varies)"),
    dc = 'dc <- read.csv("tests/reference/peers/data/degenerate_crossed_unique.csv")',
    d1 = 'd1 <- read.csv("tests/reference/peers/data/degenerate_one_group.csv")',
    dk = 'dk <- read.csv("tests/reference/peers/data/degenerate_y_const_within.csv")'),
  crossed_unique_id = deg_rec("lmer(y ~ x + (1|a) + (1|id), data=dc, REML=FALSE)",
                              "crossed factor id with one row per level"),
  crossed_unique_id_checks_ignored = deg_rec(
    'lmer(y ~ x + (1|a) + (1|id), data=dc, REML=FALSE, control=lmerControl(check.nobs.vs.nlev="ignore", check.nobs.vs.nRE="ignore"))',
    "same, with lme4's checks switched off: var(id) and var(Residual) are not separately identified"),
  unique_id_only = deg_rec("lmer(y ~ x + (1|id), data=dc, REML=FALSE)",
                           "single grouping factor with one row per level"),
  random_slope_one_group = deg_rec("lmer(y ~ x + (x|g), data=d1, REML=FALSE)",
                                   "random intercept and slope, grouping factor with a single level"),
  random_slope_one_group_checks_ignored = deg_rec(
    'lmer(y ~ x + (x|g), data=d1, REML=FALSE, control=lmerControl(check.nlev.gtr.1="ignore"))',
    "same, with check.nlev.gtr.1 switched off"),
  one_level = deg_rec("lmer(y ~ x + (1|g), data=d1, REML=FALSE)",
                      "random intercept, grouping factor with a single level"),
  one_level_checks_ignored = deg_rec(
    'lmer(y ~ x + (1|g), data=d1, REML=FALSE, control=lmerControl(check.nlev.gtr.1="ignore"))',
    "same, with check.nlev.gtr.1 switched off"),
  y_const_within_note = paste("With y constant within groups the ML/REML likelihood is unbounded",
                              "(sigma^2 -> 0); the llf lme4 reports is wherever the optimizer stopped."),
  y_const_within_intercept_only_ml = deg_rec("lmer(y ~ 1 + (1|g), data=dk, REML=FALSE)",
                                             "y constant within groups (zero within-group variation), intercept only"),
  y_const_within_intercept_only_reml = deg_rec("lmer(y ~ 1 + (1|g), data=dk, REML=TRUE)",
                                               "same, REML"),
  y_const_within_with_x_ml = deg_rec("lmer(y ~ x + (1|g), data=dk, REML=FALSE)",
                                     "y constant within groups, x varying within groups")
)

write_json_file(out, "trust_lme4.json")
cat("wrote trust_lme4.json\n")
