## statsmodels_spellings_lme4.R -- the lme4 fits of the models in
## statsmodels_spellings.py, for cross-checking.  Prints JSON on stdout
## (statsmodels_spellings.py runs it and embeds the result).
## Run from the repository root:  Rscript tests/reference/peers/statsmodels_spellings_lme4.R
suppressPackageStartupMessages(library(lme4))
args0 <- commandArgs(FALSE)
source(file.path(dirname(normalizePath(sub("^--file=", "", args0[grep("^--file=", args0)]))), "_json.R"))

dietox <- read.csv(peer_data_path("dietox.csv"))
pastes <- read.csv(dataset_path("pastes"))
sleep <- read.csv(dataset_path("sleepstudy"))

calls <- list(
  dietox_ri_reml = "lmer(Weight ~ Time + (1|Pig), data=dietox, REML=TRUE)",
  dietox_ri_ml = "lmer(Weight ~ Time + (1|Pig), data=dietox, REML=FALSE)",
  dietox_rs_reml = "lmer(Weight ~ Time + (Time|Pig), data=dietox, REML=TRUE)",
  dietox_rs_ml = "lmer(Weight ~ Time + (Time|Pig), data=dietox, REML=FALSE)",
  pastes_vc_reml = "lmer(strength ~ 1 + (1|batch) + (1|batch:cask), data=pastes, REML=TRUE)",
  pastes_vc_ml = "lmer(strength ~ 1 + (1|batch) + (1|batch:cask), data=pastes, REML=FALSE)",
  sleepstudy_rs_reml = "lmer(reaction ~ days + (days|subject), data=sleep, REML=TRUE)",
  sleepstudy_rs_ml = "lmer(reaction ~ days + (days|subject), data=sleep, REML=FALSE)"
)
out <- list(
  versions = versions(),
  data = list(dietox = 'dietox <- read.csv("tests/reference/peers/data/dietox.csv")',
              pastes = 'pastes <- read.csv("mixedlm_ext/datasets/pastes.csv")',
              sleep = 'sleep <- read.csv("mixedlm_ext/datasets/sleepstudy.csv")'))
for (nm in names(calls)) {
  r <- eval_call(calls[[nm]])
  out[[nm]] <- fit_record(r$value, calls[[nm]], level_map = c("batch:cask" = "cask"),
                          warnings = r$warnings, messages = r$messages)
}
cat(to_json(out), "\n")
