## profile_ci_lme4.R -- lme4 profile-likelihood and Wald confidence intervals.
## Writes profile_ci_lme4.json.
## Run from the repository root:  Rscript tests/reference/peers/profile_ci_lme4.R
suppressPackageStartupMessages(library(lme4))
args0 <- commandArgs(FALSE)
source(file.path(dirname(normalizePath(sub("^--file=", "", args0[grep("^--file=", args0)]))), "_json.R"))

pig <- read.csv(dataset_path("pig"))
sleep <- read.csv(dataset_path("sleepstudy"))
pen <- read.csv(dataset_path("penicillin"))

models <- list(
  pig_ri_ml = list(stata = "mixed weight week || id:",
                   fit = "lmer(weight ~ week + (1|id), data=pig, REML=FALSE)"),
  sleepstudy_ind_ml = list(stata = "mixed reaction days || subject: days",
                           fit = "lmer(reaction ~ days + (days||subject), data=sleep, REML=FALSE)"),
  penicillin_crossed_ml = list(stata = "mixed diameter || _all: R.plate || _all: R.sample",
                               fit = "lmer(diameter ~ 1 + (1|plate) + (1|sample), data=pen, REML=FALSE)"),
  sleepstudy_un_ml = list(stata = "mixed reaction days || subject: days, covariance(unstructured)",
                          fit = "lmer(reaction ~ days + (days|subject), data=sleep, REML=FALSE)"),
  pig_ri_reml = list(stata = "mixed weight week || id:, reml",
                     fit = "lmer(weight ~ week + (1|id), data=pig, REML=TRUE)"),
  penicillin_crossed_reml = list(stata = "mixed diameter || _all: R.plate || _all: R.sample, reml",
                                 fit = "lmer(diameter ~ 1 + (1|plate) + (1|sample), data=pen, REML=TRUE)")
)

## "sd_(Intercept)|id" -> "id:var(_cons)", "sigma" -> "Residual:var(Residual)",
## "cor_days.(Intercept)|subject" -> correlation (left as is).
var_label <- function(p, cross) {
  if (p == "sigma") return("Residual:var(Residual)")
  m <- regmatches(p, regexec("^sd_(.*)\\|(.*)$", p))[[1]]
  if (length(m) == 3) {
    term <- stata_term(m[2]); g <- sub("\\.[0-9]+$", "", m[3])
    if (g %in% cross) return(paste0("_all:var(R.", g, ")"))
    return(paste0(g, ":var(", term, ")"))
  }
  NA_character_
}

ci_table <- function(ci) {
  ci <- as.matrix(ci)
  setNames(lapply(rownames(ci), function(p) c(lower = ci[p, 1], upper = ci[p, 2])), rownames(ci))
}

out <- list(
  how = paste(
    "lme4 confidence intervals (tests/reference/peers/profile_ci_lme4.R). For each fit, 'profile_95'",
    "and 'profile_99' are confint(fit, method='profile', level=..., oldNames=FALSE) and 'wald_95' /",
    "'wald_99' are confint(fit, method='Wald', level=..., oldNames=FALSE) (Wald intervals exist only",
    "for fixed effects; lme4 gives NA (null) for the variance parameters). Parameter names exactly as",
    "lme4 gives them: sd_<term>|<group> (random-effect SD), cor_<term1>.<term2>|<group> (correlation),",
    "sigma (residual SD), then fixed effects. lme4 profiles the deviance (ML fits) or the REML",
    "criterion (REML fits) over the SDs/correlation; 'variance_profile_95/99' square the SD",
    "intervals (valid because the profile-likelihood interval is invariant under the monotone map",
    "sd -> sd^2 on sd >= 0) under Stata labels (level:var(term), Residual:var(Residual)).",
    "Each interval is {lower, upper}. 'fit' records the estimates (fields as in trust_lme4.json,",
    "including 'tight', a bobyqa refit with rhoend=1e-10; the intervals are from the call's fit).",
    "Profiling uses profile()'s defaults (alphamax = 0.01, delta.cutoff = 1/8); 'warnings' lists",
    "anything emitted while profiling. NOTE: lme4 profiles REML fits on the ML deviance (it calls",
    "refitML first), so the 'REML' profile intervals equal the ML ones; see the note in those entries."),
  versions = versions(),
  data = list(pig = 'pig <- read.csv("mixedlm_ext/datasets/pig.csv")',
              sleep = 'sleep <- read.csv("mixedlm_ext/datasets/sleepstudy.csv")',
              pen = 'pen <- read.csv("mixedlm_ext/datasets/penicillin.csv")'),
  models = list()
)

for (nm in names(models)) {
  m <- models[[nm]]
  cross <- if (grepl("penicillin", nm)) c("plate", "sample") else character()
  r <- eval_call(paste("fit <-", m$fit))
  rec <- list(stata = m$stata, r_call = m$fit,
              fit = fit_record(fit, m$fit, cross = cross, warnings = r$warnings, messages = r$messages))
  for (lev in c(0.95, 0.99)) {
    tag <- sprintf("%02d", round(100 * lev))
    pc <- sprintf('confint(fit, method="profile", level=%s, oldNames=FALSE)', lev)
    t0 <- proc.time()[["elapsed"]]
    pr <- eval_call(pc)
    el <- proc.time()[["elapsed"]] - t0
    ci <- pr$value
    rec[[paste0("profile_", tag, "_call")]] <- pc
    rec[[paste0("profile_", tag)]] <- ci_table(ci)
    rec[[paste0("profile_", tag, "_warnings")]] <- jarray(pr$warnings)
    rec[[paste0("profile_", tag, "_elapsed_s")]] <- el
    vp <- list()
    for (p in rownames(ci)) {
      lab <- var_label(p, cross)
      if (!is.na(lab)) vp[[lab]] <- c(lower = ci[p, 1]^2, upper = ci[p, 2]^2)
    }
    rec[[paste0("variance_profile_", tag)]] <- vp
    wc <- sprintf('confint(fit, method="Wald", level=%s, oldNames=FALSE)', lev)
    rec[[paste0("wald_", tag, "_call")]] <- wc
    rec[[paste0("wald_", tag)]] <- ci_table(eval(parse(text = wc)))
  }
  rec$param_names <- jarray(rownames(ci))
  out$models[[nm]] <- rec
}
## lme4's profile() starts with `fm <- refitML(fm)` (devfun2 in R/profile.R), so a
## REML fit is profiled on the ML deviance: its profile intervals are the ML ones.
for (nm in c("pig_ri_reml", "penicillin_crossed_reml")) {
  ml <- sub("_reml$", "_ml", nm)
  d <- 0
  for (tag in c("95", "99")) {
    a <- out$models[[nm]][[paste0("profile_", tag)]]; b <- out$models[[ml]][[paste0("profile_", tag)]]
    d <- max(d, unlist(Map(function(x, y) max(abs(x - y)), a, b)))
  }
  out$models[[nm]]$note <- paste(
    "lme4's profile() refits the model by ML before profiling (devfun2: fm <- refitML(fm)), so",
    "confint(method='profile') on this REML fit returns the ML-profile intervals; they equal those",
    "of", ml, "up to optimizer noise (max abs difference given in max_abs_diff_vs_ml_profile).",
    "Only the Wald intervals (fixed effects) use the REML fit's vcov.")
  out$models[[nm]]$max_abs_diff_vs_ml_profile <- d
}
write_json_file(out, "profile_ci_lme4.json")
cat("wrote profile_ci_lme4.json\n")
