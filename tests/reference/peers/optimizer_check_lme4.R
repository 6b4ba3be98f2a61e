## optimizer_check_lme4.R -- how far lme4's default optimizer is from the optimum
## for every lmer call recorded in the other peers/*.json files: each call is
## refitted with bobyqa (rhoend = 1e-10) and the differences are recorded.
## Writes optimizer_check_lme4.json.  Run after the other scripts, from the
## repository root:  Rscript tests/reference/peers/optimizer_check_lme4.R
suppressPackageStartupMessages(library(lme4))
args0 <- commandArgs(FALSE)
source(file.path(dirname(normalizePath(sub("^--file=", "", args0[grep("^--file=", args0)]))), "_json.R"))

prod <- read.csv(dataset_path("productivity")); pig <- read.csv(dataset_path("pig"))
sleep <- read.csv(dataset_path("sleepstudy")); pen <- read.csv(dataset_path("penicillin"))
pastes <- read.csv(dataset_path("pastes"))
sleepf <- read.csv(peer_data_path("sleepstudy_fast.csv"))
pigw <- read.csv(peer_data_path("pig_w.csv")); sleepw <- read.csv(peer_data_path("sleepstudy_w.csv"))
dietox <- read.csv(peer_data_path("dietox.csv"))
d <- read.csv(peer_data_path("mix1.csv")); d$var1 <- factor(d$var1); d$var3 <- factor(d$var3)

calls <- character(); src <- character()
for (f in c("trust_lme4.json", "statsmodels_spellings.json", "profile_ci_lme4.json",
            "margins_emmeans.json", "factor_variables_lme4.json")) {
  j <- jsonlite::fromJSON(file.path(peers_dir(), f), simplifyVector = FALSE)
  walk <- function(x) {
    if (!is.list(x)) return()
    rc <- x$r_call
    if (is.character(rc) && length(rc) == 1 && grepl("^lmer\\(", rc) &&
        !grepl("data=d[c1k],", rc) && !(rc %in% calls)) { calls <<- c(calls, rc); src <<- c(src, f) }
    for (y in x) walk(y)
  }
  walk(j)
}
rel <- function(a, b) max(abs(a - b) / pmax(abs(b), 1e-8))
out <- list(
  how = paste(
    "For every lmer call in the peers JSON files (degenerate models excluded), the fit with the",
    "call's own optimizer settings (default nloptwrap unless the call says otherwise) against a",
    "refit with update(fit, control=lmerControl(optimizer='bobyqa', optCtrl=list(rhoend=1e-10))).",
    "llf_gain = llf(bobyqa) - llf(call) (positive: the recorded fit stopped short);",
    "max_rel_diff_* = max over parameters of |call - bobyqa| / |bobyqa| for fixef, theta and",
    "sigma^2. Use these to choose test tolerances: the recorded values are the call's values."),
  versions = versions(),
  checks = list())
for (i in seq_along(calls)) {
  cl <- calls[i]
  f1 <- suppressMessages(suppressWarnings(eval(parse(text = cl))))
  f2 <- suppressMessages(suppressWarnings(update(f1, control = lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-10)))))
  out$checks[[length(out$checks) + 1]] <- list(
    r_call = cl, file = src[i],
    llf = as.numeric(logLik(f1)), llf_bobyqa = as.numeric(logLik(f2)),
    llf_gain = as.numeric(logLik(f2) - logLik(f1)),
    max_rel_diff_fixef = rel(fixef(f1), fixef(f2)),
    max_rel_diff_theta = rel(getME(f1, "theta"), getME(f2, "theta")),
    rel_diff_sigma2 = rel(sigma(f1)^2, sigma(f2)^2))
}
write_json_file(out, "optimizer_check_lme4.json")
cat("wrote optimizer_check_lme4.json\n")
