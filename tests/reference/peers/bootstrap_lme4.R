## bootstrap_lme4.R -- lme4 parametric bootstrap (bootMer) summaries and timings.
## Writes bootstrap_lme4.json.  data/boot4000.csv comes from make_boot4000.py.
## Run from the repository root:  Rscript tests/reference/peers/bootstrap_lme4.R
suppressPackageStartupMessages(library(lme4))
args0 <- commandArgs(FALSE)
source(file.path(dirname(normalizePath(sub("^--file=", "", args0[grep("^--file=", args0)]))), "_json.R"))

pig <- read.csv(dataset_path("pig"))
sleep <- read.csv(dataset_path("sleepstudy"))
b4 <- read.csv(peer_data_path("boot4000.csv"))
RNGkind("default", "default", "default")

FUN_TEXT <- "function(m) c(fixef(m), sigma(m), as.data.frame(VarCorr(m))$sdcor)"
boot_fun <- eval(parse(text = FUN_TEXT))

cpu <- tryCatch({
  l <- readLines("/proc/cpuinfo"); m <- grep("^model name", l, value = TRUE)
  list(model = sub("^model name\\s*:\\s*", "", m[1]), logical_cpus = length(m))
}, error = function(e) list(model = NA_character_, logical_cpus = NA_integer_))

run <- function(fit_call, nsim, labels) {
  fit <- eval(parse(text = fit_call))
  bcall <- sprintf('bootMer(fit, %s, nsim=%d, seed=1, type="parametric", use.u=FALSE)', FUN_TEXT, nsim)
  warns <- character()
  t0 <- proc.time()
  bb <- withCallingHandlers(eval(parse(text = sub(FUN_TEXT, "boot_fun", bcall, fixed = TRUE))),
                            warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") },
                            message = function(m) invokeRestart("muffleMessage"))
  el <- (proc.time() - t0)
  tt <- bb$t
  colnames(tt) <- labels
  nfail <- sum(!stats::complete.cases(tt))
  q <- apply(tt, 2, quantile, probs = c(0.025, 0.975), na.rm = TRUE, type = 7)
  list(
    r_call_fit = fit_call,
    r_call = bcall,
    statistic_function = FUN_TEXT,
    statistic_labels = jarray(labels),
    statistic_names_from_R = jarray(names(bb$t0)),
    nsim = nsim,
    n_failed = nfail,
    t0 = setNames(as.numeric(bb$t0), labels),
    mean = setNames(colMeans(tt, na.rm = TRUE), labels),
    sd = setNames(apply(tt, 2, sd, na.rm = TRUE), labels),
    p2_5 = setNames(q[1, ], labels),
    p97_5 = setNames(q[2, ], labels),
    percentile_definition = "quantile(t[, j], c(0.025, 0.975), type = 7, na.rm = TRUE)",
    elapsed_s = el[["elapsed"]],
    user_s = el[["user.self"]],
    warnings = jarray(unique(warns)),
    fit = fit_record(fit, fit_call)
  )
}

out <- list(
  how = paste(
    "lme4 parametric bootstrap (tests/reference/peers/bootstrap_lme4.R): for each ML fit, r_call is",
    "the exact bootMer call (seed=1, type='parametric', use.u=FALSE: new random effects and",
    "residuals are simulated from the fitted model, then the model is refitted), with statistic",
    "function(m) c(fixef(m), sigma(m), as.data.frame(VarCorr(m))$sdcor). That vector is",
    "fixed effects, sigma, then the VarCorr SDs including the residual SD again (so the last entry",
    "duplicates sigma); statistic_labels name the positions (R leaves the last ones unnamed,",
    "see statistic_names_from_R). Recorded: t0 (the statistic at the fit), mean and sd (sd with",
    "n-1) over the nsim replicates, percentile 2.5%/97.5% (quantile type 7), failed replicates,",
    "and wall-clock elapsed seconds of the bootMer call alone (proc.time, single process, no",
    "parallel) on the machine described in 'machine'. Bootstrap draws depend on R's RNG",
    "(RNGkind given in 'rng'); they are not reproducible in another language, so compare",
    "mean/sd/percentiles to Monte-Carlo tolerance (e.g. sd/sqrt(nsim) for the mean)."),
  versions = versions(),
  rng = jarray(RNGkind()),
  machine = cpu,
  data = list(pig = 'pig <- read.csv("mixedlm_ext/datasets/pig.csv")',
              sleep = 'sleep <- read.csv("mixedlm_ext/datasets/sleepstudy.csv")',
              b4 = 'b4 <- read.csv("tests/reference/peers/data/boot4000.csv")  # made by make_boot4000.py'),
  boot4000_generation = paste("make_boot4000.py: 200 groups x 20 rows, numpy.random.default_rng(12345),",
                              "x ~ N(0,1) (4000 draws), u ~ N(0,1) (200), e ~ N(0, 2^2) (4000), y = 1 + 0.5 x + u_g + e")
)
out$pig_ri_ml <- run("lmer(weight ~ week + (1|id), data=pig, REML=FALSE)", 1000L,
                     c("(Intercept)", "week", "sigma", "sd_(Intercept)|id", "sd_Residual"))
out$sleepstudy_ri_ml <- run("lmer(reaction ~ days + (1|subject), data=sleep, REML=FALSE)", 1000L,
                            c("(Intercept)", "days", "sigma", "sd_(Intercept)|subject", "sd_Residual"))
out$boot4000_ri_ml <- run("lmer(y ~ x + (1|g), data=b4, REML=FALSE)", 500L,
                          c("(Intercept)", "x", "sigma", "sd_(Intercept)|g", "sd_Residual"))
write_json_file(out, "bootstrap_lme4.json")
cat("wrote bootstrap_lme4.json\n")
