# One R peer fit for the mixedlm_ext benchmark suite (called by benchmarks/run.py).
#
#   Rscript peer_r.R DATA.csv ENGINE REML FACTORS FORMULA [RANDOM] [CORRELATION]
#
# ENGINE       lmer (lme4) or lme (nlme)
# REML         1 for REML, 0 for ML
# FACTORS      comma-separated columns turned into factors ("-" for none)
# FORMULA      lmer: the full formula; lme: the fixed formula
# RANDOM       lme only: random formula, e.g. "~1|g"
# CORRELATION  lme only: "ar1:t|g" for corAR1(form = ~t|g), or "-"
#
# Only the fit is timed (system.time()[["elapsed"]]); before it a tiny fit on
# a data set bundled with the package warms up lazy loading / byte compiling.
# After the first timed fit the same fit is repeated (3 times when the first
# took <= 20 s, once when <= 120 s, else not) and "time" is the best of all
# timed fits ("first" is the first one), as for the Python peers.
# The last line printed is
#   RESULT {"time": <s>, "first": <s>, "repeats": <n>, "loglik": <logLik>, ...}
suppressPackageStartupMessages({
  library(stats)
})

args <- commandArgs(trailingOnly = TRUE)
if (length(args) < 5) stop("usage: peer_r.R DATA ENGINE REML FACTORS FORMULA [RANDOM] [CORRELATION]")
path <- args[[1]]
engine <- args[[2]]
reml <- args[[3]] == "1"
factors <- if (args[[4]] == "-") character(0) else strsplit(args[[4]], ",", fixed = TRUE)[[1]]
fml <- as.formula(args[[5]])
random <- if (length(args) >= 6 && args[[6]] != "-") as.formula(args[[6]]) else NULL
corr <- if (length(args) >= 7) args[[7]] else "-"

num <- function(x) if (is.null(x) || length(x) == 0 || !is.finite(x)) "null" else sprintf("%.15g", x)
jstr <- function(x) sprintf("\"%s\"", gsub("\"", "'", gsub("\\\\", "/", gsub("[\r\n\t]", " ", x))))

if (requireNamespace("data.table", quietly = TRUE)) {
  df <- as.data.frame(data.table::fread(path, showProgress = FALSE))
} else {
  df <- read.csv(path)
}
for (f in factors) df[[f]] <- factor(df[[f]])

msgs <- character(0)
converged <- TRUE
if (engine == "lmer") {
  suppressPackageStartupMessages(library(lme4))
  ver <- as.character(packageVersion("lme4"))
  # warm-up (not timed)
  invisible(suppressWarnings(suppressMessages(
    lmer(Reaction ~ Days + (Days | Subject), lme4::sleepstudy, REML = reml))))
  fit <- NULL
  fitfun <- function() lmer(fml, data = df, REML = reml)
  tm <- system.time(
    fit <- withCallingHandlers(
      fitfun(),
      warning = function(w) { msgs <<- c(msgs, conditionMessage(w)); invokeRestart("muffleWarning") },
      message = function(m) { msgs <<- c(msgs, conditionMessage(m)); invokeRestart("muffleMessage") }
    )
  )
  ll <- as.numeric(logLik(fit))
  conv <- fit@optinfo$conv$lme4
  if (!is.null(conv$messages)) { converged <- FALSE; msgs <- c(msgs, conv$messages) }
  extra <- sprintf("\"nobs\": %d, \"ngrps\": %s", nobs(fit),
                   jstr(paste(names(ngrps(fit)), ngrps(fit), sep = "=", collapse = ",")))
} else if (engine == "lme") {
  suppressPackageStartupMessages(library(nlme))
  ver <- as.character(packageVersion("nlme"))
  invisible(suppressWarnings(
    lme(distance ~ age, random = ~1 | Subject, correlation = corAR1(),
        data = nlme::Orthodont, method = if (reml) "REML" else "ML")))
  cor_obj <- NULL
  if (corr != "-") {
    parts <- strsplit(corr, ":", fixed = TRUE)[[1]]
    if (parts[[1]] != "ar1") stop("unknown correlation ", corr)
    cor_obj <- corAR1(form = as.formula(paste("~", parts[[2]])))
  }
  fit <- NULL
  fitfun <- function() lme(fml, random = random, correlation = cor_obj, data = df,
                           method = if (reml) "REML" else "ML")
  tm <- system.time(
    fit <- withCallingHandlers(
      fitfun(),
      warning = function(w) { msgs <<- c(msgs, conditionMessage(w)); invokeRestart("muffleWarning") }
    )
  )
  ll <- as.numeric(logLik(fit))
  extra <- sprintf("\"nobs\": %d", nrow(df))
} else {
  stop("unknown engine ", engine)
}

first <- tm[["elapsed"]]
nrep <- if (first <= 20) 3L else if (first <= 120) 1L else 0L
times <- first
for (i in seq_len(nrep)) {
  times <- c(times, system.time(suppressWarnings(suppressMessages(fitfun())))[["elapsed"]])
}

cat(sprintf("RESULT {\"time\": %s, \"first\": %s, \"repeats\": %d, \"loglik\": %s, \"converged\": %s, \"engine\": \"%s\", \"version\": \"%s\", \"R\": \"%s\", \"Matrix\": \"%s\", \"messages\": %s, %s}\n",
            num(min(times)), num(first), nrep, num(ll), if (converged) "true" else "false", engine, ver,
            paste(R.version$major, R.version$minor, sep = "."),
            as.character(packageVersion("Matrix")),
            jstr(paste(unique(msgs), collapse = " | ")), extra))
