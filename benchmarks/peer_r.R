# One R peer on one case, driven line by line (called by benchmarks/run.py).
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
# The script reads the data, loads the package and runs a tiny warm-up fit on a
# data set bundled with it (lazy loading, byte compiling), prints
#   READY {"version": ..., "R": ..., "Matrix": ...}
# and then answers one command per line on stdin (the harness interleaves the
# peers' repeats):
#   fit   -> FIT {"status": "ok", "fit_s": <system.time elapsed>, "loglik": ..., "converged": ..., "n_eval": ...}
#   quit
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

if (engine == "lmer") {
  suppressPackageStartupMessages(library(lme4))
  ver <- as.character(packageVersion("lme4"))
  invisible(suppressWarnings(suppressMessages(
    lmer(Reaction ~ Days + (Days | Subject), lme4::sleepstudy, REML = reml))))
  fitfun <- function() lmer(fml, data = df, REML = reml)
  n_eval <- function(fit) fit@optinfo$feval
  conv_ok <- function(fit) is.null(fit@optinfo$conv$lme4$messages)
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
  fitfun <- function() lme(fml, random = random, correlation = cor_obj, data = df,
                           method = if (reml) "REML" else "ML")
  n_eval <- function(fit) NULL
  conv_ok <- function(fit) TRUE
} else {
  stop("unknown engine ", engine)
}

cat(sprintf("READY {\"version\": \"%s\", \"R\": \"%s\", \"Matrix\": \"%s\", \"engine\": \"%s\"}\n", ver,
            paste(R.version$major, R.version$minor, sep = "."), as.character(packageVersion("Matrix")), engine))
flush(stdout())

con <- file("stdin", "r")
repeat {
  line <- readLines(con, n = 1)
  if (length(line) == 0 || line == "quit") break
  if (line != "fit") next
  msgs <- character(0)
  fit <- NULL
  res <- tryCatch({
    tm <- system.time(
      fit <- withCallingHandlers(
        fitfun(),
        warning = function(w) { msgs <<- c(msgs, conditionMessage(w)); invokeRestart("muffleWarning") },
        message = function(m) { msgs <<- c(msgs, conditionMessage(m)); invokeRestart("muffleMessage") }
      )
    )
    sprintf("FIT {\"status\": \"ok\", \"fit_s\": %s, \"loglik\": %s, \"converged\": %s, \"n_eval\": %s, \"messages\": %s}",
            num(tm[["elapsed"]]), num(as.numeric(logLik(fit))), if (conv_ok(fit)) "true" else "false",
            num(n_eval(fit)), jstr(paste(unique(msgs), collapse = " | ")))
  }, error = function(e) sprintf("FIT {\"status\": \"failed\", \"reason\": %s}", jstr(conditionMessage(e))))
  cat(res, "\n", sep = "")
  flush(stdout())
}
