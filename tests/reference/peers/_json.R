## Shared helpers for the peers/*.R reference scripts (sourced, not run alone).
## - peers_dir(): directory of the running script; repo_root(): the repository root.
## - to_json(): a small JSON writer that prints every double with the shortest
##   of %.15g/%.16g/%.17g that reads back to the same double (jsonlite's
##   digits=NA stops at 15 significant digits).
## - re_labels(): Stata-style labels for as.data.frame(VarCorr(fit)) rows.
## - fit_record(): the common fields recorded for one lmer fit.

peers_dir <- function() {
  a <- commandArgs(FALSE)
  f <- sub("^--file=", "", a[grep("^--file=", a)])
  if (length(f) == 0) return(normalizePath("tests/reference/peers"))
  dirname(normalizePath(f[1]))
}
repo_root <- function() normalizePath(file.path(peers_dir(), "..", "..", ".."))
dataset_path <- function(name) file.path(repo_root(), "mixedlm_ext", "datasets", paste0(name, ".csv"))
peer_data_path <- function(name) file.path(peers_dir(), "data", name)

jarray <- function(x) structure(as.list(x), class = "jarray")   # force a JSON array

num_json <- function(x) {
  if (is.na(x)) return("null")
  if (is.infinite(x)) return(if (x > 0) "\"Inf\"" else "\"-Inf\"")
  if (x == round(x) && abs(x) < 1e15) return(sprintf("%.0f", x))
  for (d in 15:17) {
    s <- sprintf(paste0("%.", d, "g"), x)
    if (as.numeric(s) == x) return(s)
  }
  s
}
str_json <- function(s) {
  if (is.na(s)) return("null")
  as.character(jsonlite::toJSON(s, auto_unbox = TRUE))
}
scalar_json <- function(v) {
  if (is.factor(v)) v <- as.character(v)
  if (is.logical(v)) return(if (is.na(v)) "null" else if (v) "true" else "false")
  if (is.character(v)) return(str_json(v))
  if (is.integer(v)) return(if (is.na(v)) "null" else as.character(v))
  if (is.numeric(v)) return(num_json(v))
  stop("cannot serialise ", class(v))
}
to_json <- function(x, indent = 0) {
  pad <- strrep(" ", indent + 1); pad0 <- strrep(" ", indent)
  obj <- function(keys, vals) {
    if (length(keys) == 0) return("{}")
    items <- vapply(seq_along(keys), function(i)
      paste0(pad, str_json(keys[i]), ": ", to_json(vals[[i]], indent + 1)), "")
    paste0("{\n", paste(items, collapse = ",\n"), "\n", pad0, "}")
  }
  arr <- function(vals) {
    if (length(vals) == 0) return("[]")
    parts <- vapply(vals, function(v) to_json(v, indent + 1), "")
    if (all(!grepl("\n", parts)) && sum(nchar(parts)) < 2000)
      return(paste0("[", paste(parts, collapse = ", "), "]"))
    paste0("[\n", paste0(pad, parts, collapse = ",\n"), "\n", pad0, "]")
  }
  if (is.null(x)) return("null")
  if (inherits(x, "jarray")) return(arr(unclass(x)))
  if (is.data.frame(x)) return(obj(names(x), lapply(x, function(col) jarray(col))))
  if (is.matrix(x)) {
    rows <- lapply(seq_len(nrow(x)), function(i) jarray(unname(x[i, ])))
    if (is.null(dimnames(x))) return(arr(rows))
    return(obj(c("rownames", "colnames", "values"),
               list(jarray(rownames(x)), jarray(colnames(x)), jarray(rows))))
  }
  if (is.list(x)) {
    if (!is.null(names(x))) return(obj(names(x), x))
    return(arr(x))
  }
  if (is.atomic(x)) {
    if (!is.null(names(x))) return(obj(names(x), as.list(x)))
    if (length(x) == 1 && !inherits(x, "AsIs")) return(scalar_json(x))
    return(arr(as.list(x)))
  }
  stop("cannot serialise ", class(x))
}
write_json_file <- function(x, name) {
  f <- file.path(peers_dir(), name)
  writeLines(to_json(x), f)
  invisible(f)
}

## Stata names for lme4 terms: "(Intercept)" -> "_cons"
stata_term <- function(v) ifelse(v == "(Intercept)", "_cons", v)

## Stata-style labels for the rows of as.data.frame(VarCorr(fit)).
## level_map: optional named vector mapping lme4 group names to Stata level names
## (e.g. c(plate = "_all", "batch:cask" = "cask")); term_map: optional mapping of
## lme4 term names to Stata names (e.g. c("I(week^2)" = "c.week#c.week")).
## Crossed factors written as (1|f) with level "_all" are labelled var(R.f).
re_labels <- function(fit, level_map = NULL, term_map = NULL, cross = character()) {
  vc <- as.data.frame(VarCorr(fit), order = "lower.tri")
  tm <- function(v) { v <- ifelse(is.na(v), NA, stata_term(v));
    if (!is.null(term_map)) for (k in names(term_map)) v[!is.na(v) & v == k] <- term_map[[k]]; v }
  out <- list(); sd <- list()
  for (i in seq_len(nrow(vc))) {
    g <- vc$grp[i]
    if (g == "Residual") { out[["Residual:var(Residual)"]] <- vc$vcov[i]; next }
    g0 <- sub("\\.[0-9]+$", "", g)          # (x||g) gives g, g.1, ...
    lev <- if (!is.null(level_map) && g0 %in% names(level_map)) level_map[[g0]] else sub(".*:", "", g0)
    v1 <- tm(vc$var1[i]); v2 <- tm(vc$var2[i])
    if (g0 %in% cross) { out[[paste0("_all:var(R.", g0, ")")]] <- vc$vcov[i]; next }
    if (is.na(v2)) {
      out[[paste0(lev, ":var(", v1, ")")]] <- vc$vcov[i]
    } else {
      ## Stata lists the constant last: cov(days,_cons)
      pr <- c(v1, v2); pr <- c(pr[pr != "_cons"], pr[pr == "_cons"])
      out[[paste0(lev, ":cov(", pr[1], ",", pr[2], ")")]] <- vc$vcov[i]
    }
  }
  ## Stata order within a level: variances (slopes first, _cons last), then covariances
  nm <- names(out)
  lv <- unique(sub(":.*", "", nm))
  ord <- order(match(sub(":.*", "", nm), lv), grepl(":cov\\(", nm), grepl("\\(_cons\\)$", nm))
  out[ord]
}

varcorr_rows <- function(fit) {
  vc <- as.data.frame(VarCorr(fit), order = "lower.tri")
  list(grp = jarray(vc$grp), var1 = jarray(vc$var1), var2 = jarray(vc$var2),
       vcov = jarray(vc$vcov), sdcor = jarray(vc$sdcor))
}

fe_named <- function(v, fe_map = NULL) {
  n <- names(v)
  if (!is.null(fe_map)) n <- ifelse(n %in% names(fe_map), fe_map[n], n)
  n <- stata_term(n)
  v <- setNames(as.numeric(v), n)
  ## Stata prints _cons last
  c(v[names(v) != "_cons"], v[names(v) == "_cons"])
}

## Evaluate an lmer call given as a string (so the JSON can carry it verbatim),
## capturing warnings and messages.
eval_call <- function(call, envir = parent.frame()) {
  warns <- character(); msgs <- character()
  val <- withCallingHandlers(
    tryCatch(eval(parse(text = call), envir = envir),
             error = function(e) structure(list(message = conditionMessage(e)), class = "fit_error")),
    warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") },
    message = function(m) { msgs <<- c(msgs, sub("\n$", "", conditionMessage(m))); invokeRestart("muffleMessage") })
  list(value = val, warnings = warns, messages = msgs)
}

TIGHT_CONTROL <- 'lmerControl(optimizer="bobyqa", optCtrl=list(rhoend=1e-10))'

fit_record <- function(fit, call, fe_map = NULL, level_map = NULL, term_map = NULL,
                       cross = character(), warnings = character(), messages = character(),
                       tight = TRUE) {
  ll <- logLik(fit)
  rec <- list(
    r_call = call,
    method = if (isREML(fit)) "REML" else "ML",
    n = nobs(fit),
    llf = as.numeric(ll),
    llf_df = attr(ll, "df"),
    fe = fe_named(fixef(fit), fe_map),
    fe_se = fe_named(setNames(sqrt(diag(as.matrix(vcov(fit)))), names(fixef(fit))), fe_map),
    re = re_labels(fit, level_map, term_map, cross),
    sigma2 = sigma(fit)^2,
    varcorr = varcorr_rows(fit),
    lme4_fixef_names = jarray(names(fixef(fit))),
    theta = jarray(unname(getME(fit, "theta"))),
    isSingular = isSingular(fit),
    warnings = jarray(warnings),
    messages = jarray(messages),
    lme4_conv_messages = jarray(fit@optinfo$conv$lme4$messages)
  )
  if (tight) {
    ## the same model refitted with a tight bobyqa run: lme4's default nloptwrap
    ## tolerances leave variance parameters ~1e-5..1e-4 (relative) from the optimum
    ## in some fits; 'tight' is the better reference, the top level is what the call gives.
    ucall <- sprintf("update(fit, control=%s)", TIGHT_CONTROL)
    w2 <- character()
    f2 <- withCallingHandlers(
      suppressMessages(update(fit, control = eval(parse(text = TIGHT_CONTROL)))),
      warning = function(w) { w2 <<- c(w2, conditionMessage(w)); invokeRestart("muffleWarning") })
    ll2 <- logLik(f2)
    rec$tight <- list(
      r_call = ucall,
      llf = as.numeric(ll2),
      fe = fe_named(fixef(f2), fe_map),
      fe_se = fe_named(setNames(sqrt(diag(as.matrix(vcov(f2)))), names(fixef(f2))), fe_map),
      re = re_labels(f2, level_map, term_map, cross),
      sigma2 = sigma(f2)^2,
      theta = jarray(unname(getME(f2, "theta"))),
      llf_gain_over_call = as.numeric(ll2) - as.numeric(ll),
      warnings = jarray(w2))
  }
  rec
}

versions <- function() list(
  R = R.version.string,
  lme4 = as.character(packageVersion("lme4")),
  Matrix = as.character(packageVersion("Matrix")),
  platform = R.version$platform)
