## margins_emmeans.R -- reference values for Stata-style predictive margins after
## mixed (fixed-portion predictions, delta-method SEs from vcov(fit), z tests),
## from emmeans and from a direct delta-method computation.
## Writes margins_emmeans.json (and data/sleepstudy_fast.csv).
## Run from the repository root:  Rscript tests/reference/peers/margins_emmeans.R
suppressPackageStartupMessages({library(lme4); library(emmeans)})
args0 <- commandArgs(FALSE)
source(file.path(dirname(normalizePath(sub("^--file=", "", args0[grep("^--file=", args0)]))), "_json.R"))
emm_options(msg.interaction = FALSE, msg.nesting = FALSE)

prod <- read.csv(dataset_path("productivity"))
sleep <- read.csv(dataset_path("sleepstudy"))
sleepf <- sleep; sleepf$fast <- as.integer(sleepf$days >= 5)
write.csv(sleepf, peer_data_path("sleepstudy_fast.csv"), row.names = FALSE, quote = FALSE)
sleepf <- read.csv(peer_data_path("sleepstudy_fast.csv"))

level <- 0.95
zc <- qnorm(1 - (1 - level) / 2)

## summary(emmGrid, infer = TRUE) -> records
emm_rec <- function(call, fit) {
  e <- eval(parse(text = call))
  s <- as.data.frame(summary(e, infer = c(TRUE, TRUE), level = level))
  estcol <- intersect(c("emmean", "prediction", grep("\\.trend$", names(s), value = TRUE)), names(s))[1]
  lab <- names(s)[seq_len(which(names(s) == estcol) - 1)]
  labs <- apply(s[, lab, drop = FALSE], 1, function(r) paste(paste0(lab, "=", trimws(r)), collapse = ","))
  L <- e@linfct
  colnames(L) <- names(fixef(fit))
  rows <- lapply(seq_len(nrow(s)), function(i) list(
    label = labs[[i]], estimate = s[[estcol]][i], se = s$SE[i], df = s$df[i],
    z = s$z.ratio[i], p = s$p.value[i], ci_lower = s$asymp.LCL[i], ci_upper = s$asymp.UCL[i]))
  names(rows) <- labs
  list(r_call = call, summary_call = sprintf("summary(e, infer = c(TRUE, TRUE), level = %s)", level),
       estimate_column = estcol, results = rows,
       linfct = L, grid = as.list(e@grid))
}

## Stata-style: average over the estimation sample of x_i'beta with the
## covariate(s) set ('setter' modifies the fixed-effect design matrix X).
delta_rec <- function(fit, setters, labels, what) {
  X <- getME(fit, "X"); b <- fixef(fit); V <- as.matrix(vcov(fit))
  L <- t(vapply(setters, function(f) colMeans(f(X)), numeric(ncol(X))))
  colnames(L) <- names(b)
  est <- drop(L %*% b); se <- sqrt(diag(L %*% V %*% t(L))); z <- est / se
  rows <- lapply(seq_along(est), function(i) list(
    label = labels[i], estimate = est[i], se = se[i], z = z[i], p = 2 * pnorm(-abs(z[i])),
    ci_lower = est[i] - zc * se[i], ci_upper = est[i] + zc * se[i]))
  names(rows) <- labels
  list(what = what, formula = "est = L %*% fixef(fit); se = sqrt(diag(L %*% vcov(fit) %*% t(L))); z = est/se; p = 2*pnorm(-|z|); CI = est -/+ qnorm(0.975)*se",
       results = rows, L = L)
}

compare <- function(a, b) {
  d <- mapply(function(x, y) c(estimate = x$estimate - y$estimate, se = x$se - y$se),
              a$results, b$results)
  list(max_abs_diff_estimate = max(abs(d["estimate", ])), max_abs_diff_se = max(abs(d["se", ])))
}

out <- list(
  how = paste(
    "Stata-style predictive margins after an ML mixed model (fixed portion, predict(xb)), with",
    "delta-method SEs from vcov(fit) = (X'V^-1X)^-1 at the ML estimates, z statistics, two-sided",
    "normal p-values for H0: margin = 0 and 95% normal CIs (tests/reference/peers/margins_emmeans.R).",
    "'emmeans' entries: the exact emmeans/emtrends call (weights='proportional',",
    "lmer.df='asymptotic' so df = Inf and SEs come from vcov(fit)); 'linfct' is the L matrix emmeans",
    "used (rows = reported margins, columns = fixef names) and 'grid' its reference grid",
    "(.wgt. = the proportional weights, i.e. cell counts). emmeans' reference grid holds every",
    "numeric covariate not named in the spec/at at its sample mean and every factor at each level;",
    "a margin over the spec averages the grid predictions over the other factors with weights",
    "proportional to their marginal sample frequencies (weights='proportional'). 'stata_style'",
    "entries compute the Stata definition directly: L = column means over the estimation sample",
    "of the design matrix X with the named variable(s) set to the value (interactions recomputed),",
    "then est = L beta, se = sqrt(L vcov L'). For these models the two definitions coincide:",
    "x'b is linear in every covariate emmeans holds at its mean (so the mean prediction equals the",
    "prediction at the mean), and a factor outside the spec is averaged with sample-proportional",
    "weights, which is what averaging over the sample does; 'agreement' gives the max",
    "absolute differences. Stata commands: margins region / margins, at(unemp=(4 6 8)) /",
    "margins fast / margins, at(days=(0 3 6 9)) / margins, dydx(days) / margins fast, dydx(days) /",
    "margins fast, at(days=(0 3 6 9)), all after mixed ..., ml (the default). The margins use the",
    "call's fit; 'fit' (fields as in trust_lme4.json) also holds 'tight', a bobyqa refit."),
  versions = c(versions(), list(emmeans = as.character(packageVersion("emmeans")))),
  data = list(prod = 'prod <- read.csv("mixedlm_ext/datasets/productivity.csv")',
              sleepf = 'sleepf <- read.csv("tests/reference/peers/data/sleepstudy_fast.csv")  # fast = as.integer(days >= 5)')
)

## ------------------------------------------------------------ (a) productivity
fa_call <- "lmer(gsp ~ private + emp + hwy + water + other + unemp + factor(region) + (1|state), data=prod, REML=FALSE)"
fa <- eval(parse(text = fa_call))
regs <- sort(unique(prod$region))
rcols <- paste0("factor(region)", regs[-1])
set_region <- function(r) function(X) { X[, rcols] <- 0; if (r != regs[1]) X[, paste0("factor(region)", r)] <- 1; X }
set_unemp <- function(u) function(X) { X[, "unemp"] <- u; X }

a <- list(stata = "mixed gsp private emp hwy water other unemp i.region || state:",
          fit = fit_record(fa, fa_call))
a$margins_region <- list(
  stata = "margins region",
  emmeans = emm_rec('emmeans(fa, ~ region, weights = "proportional", lmer.df = "asymptotic")', fa),
  stata_style = delta_rec(fa, lapply(regs, set_region), paste0("region=", regs),
                          "mean over the 816 rows of x'b with region set to each level"))
a$margins_region$agreement <- compare(a$margins_region$emmeans, a$margins_region$stata_style)
a$margins_at_unemp <- list(
  stata = "margins, at(unemp=(4 6 8))",
  emmeans = emm_rec('emmeans(fa, ~ unemp, at = list(unemp = c(4, 6, 8)), weights = "proportional", lmer.df = "asymptotic")', fa),
  stata_style = delta_rec(fa, lapply(c(4, 6, 8), set_unemp), paste0("unemp=", c(4, 6, 8)),
                          "mean over the 816 rows of x'b with unemp set to the value (region as observed)"))
a$margins_at_unemp$agreement <- compare(a$margins_at_unemp$emmeans, a$margins_at_unemp$stata_style)
out$productivity <- a

## ------------------------------------------------------------ (b) sleepstudy
fb_call <- "lmer(reaction ~ factor(fast)*days + (1|subject), data=sleepf, REML=FALSE)"
fb <- eval(parse(text = fb_call))
set_fast <- function(f) function(X) { X[, "factor(fast)1"] <- f; X[, "factor(fast)1:days"] <- f * X[, "days"]; X }
set_days <- function(dd) function(X) { X[, "days"] <- dd; X[, "factor(fast)1:days"] <- X[, "factor(fast)1"] * dd; X }
set_both <- function(f, dd) function(X) set_days(dd)(set_fast(f)(X))
## derivative of x'b in days: columns d x / d days
dx_days <- function(X) { D <- X * 0; D[, "days"] <- 1; D[, "factor(fast)1:days"] <- X[, "factor(fast)1"]; D }
dx_days_fast <- function(f) function(X) dx_days(set_fast(f)(X))

b <- list(stata = "mixed reaction i.fast##c.days || subject:", fit = fit_record(fb, fb_call))
b$margins_fast <- list(
  stata = "margins fast",
  emmeans = emm_rec('emmeans(fb, ~ fast, weights = "proportional", lmer.df = "asymptotic")', fb),
  stata_style = delta_rec(fb, lapply(0:1, set_fast), paste0("fast=", 0:1),
                          "mean over the 180 rows of x'b with fast set (days as observed; emmeans holds days at its mean 4.5, equivalent since x'b is linear in days)"))
b$margins_fast$agreement <- compare(b$margins_fast$emmeans, b$margins_fast$stata_style)
b$margins_at_days <- list(
  stata = "margins, at(days=(0 3 6 9))",
  emmeans = emm_rec('emmeans(fb, ~ days, at = list(days = c(0, 3, 6, 9)), weights = "proportional", lmer.df = "asymptotic")', fb),
  stata_style = delta_rec(fb, lapply(c(0, 3, 6, 9), set_days), paste0("days=", c(0, 3, 6, 9)),
                          "mean over the 180 rows of x'b with days set (fast as observed: it is a separate variable, not recomputed from days)"))
b$margins_at_days$agreement <- compare(b$margins_at_days$emmeans, b$margins_at_days$stata_style)
b$margins_fast_at_days <- list(
  stata = "margins fast, at(days=(0 3 6 9))",
  emmeans = emm_rec('emmeans(fb, ~ fast * days, at = list(days = c(0, 3, 6, 9)), weights = "proportional", lmer.df = "asymptotic")', fb),
  stata_style = delta_rec(fb, unlist(lapply(c(0, 3, 6, 9), function(dd) lapply(0:1, function(f) set_both(f, dd)))),
                          unlist(lapply(c(0, 3, 6, 9), function(dd) paste0("fast=", 0:1, ",days=", dd))),
                          "x'b with both fast and days set (the same for every row)"))
b$margins_fast_at_days$agreement <- compare(b$margins_fast_at_days$emmeans, b$margins_fast_at_days$stata_style)
b$ame_days <- list(
  stata = "margins, dydx(days)",
  emmeans = emm_rec('emtrends(fb, ~ 1, var = "days", weights = "proportional", lmer.df = "asymptotic")', fb),
  stata_style = delta_rec(fb, list(dx_days), "dydx(days)",
                          "mean over the 180 rows of d(x'b)/d(days) = b_days + b_{1.fast#c.days} * mean(fast)"))
b$ame_days$agreement <- compare(b$ame_days$emmeans, b$ame_days$stata_style)
b$ame_days$note <- "emtrends differentiates numerically (difference quotient); its linfct is exact here up to rounding because x'b is linear in days."
b$ame_days_by_fast <- list(
  stata = "margins fast, dydx(days)",
  emmeans = emm_rec('emtrends(fb, ~ fast, var = "days", weights = "proportional", lmer.df = "asymptotic")', fb),
  stata_style = delta_rec(fb, lapply(0:1, dx_days_fast), paste0("fast=", 0:1),
                          "d(x'b)/d(days) with fast set: b_days + fast * b_{1.fast#c.days}"))
b$ame_days_by_fast$agreement <- compare(b$ame_days_by_fast$emmeans, b$ame_days_by_fast$stata_style)
out$sleepstudy_fast <- b

write_json_file(out, "margins_emmeans.json")
cat("wrote margins_emmeans.json\n")
