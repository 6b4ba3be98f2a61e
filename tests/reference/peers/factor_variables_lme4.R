## factor_variables_lme4.R -- lme4 ML fits matching Stata factor-variable
## models, with coefficients under Stata's names.  Writes factor_variables_lme4.json.
## Run from the repository root:  Rscript tests/reference/peers/factor_variables_lme4.R
## (data/sleepstudy_fast.csv is written by margins_emmeans.R; it is rebuilt here if absent.)
suppressPackageStartupMessages(library(lme4))
args0 <- commandArgs(FALSE)
source(file.path(dirname(normalizePath(sub("^--file=", "", args0[grep("^--file=", args0)]))), "_json.R"))

prod <- read.csv(dataset_path("productivity"))
pig <- read.csv(dataset_path("pig"))
if (!file.exists(peer_data_path("sleepstudy_fast.csv"))) {
  s <- read.csv(dataset_path("sleepstudy")); s$fast <- as.integer(s$days >= 5)
  write.csv(s, peer_data_path("sleepstudy_fast.csv"), row.names = FALSE, quote = FALSE)
}
sleepf <- read.csv(peer_data_path("sleepstudy_fast.csv"))
stopifnot(all(sleepf$fast == as.integer(sleepf$days >= 5)))

R <- 1:9
reg <- function(prefix, levels, suffix = "") setNames(paste0(levels, ".region", suffix), paste0(prefix, levels, if (nzchar(suffix)) ":unemp" else ""))

models <- list(
  i_region = list(
    stata = "mixed gsp private emp i.region || state:",
    r_call = "lmer(gsp ~ private + emp + factor(region) + (1|state), data=prod, REML=FALSE)",
    fe_map = reg("factor(region)", 2:9),
    base = c("1b.region" = 0)),
  i_region_x_unemp = list(
    stata = "mixed gsp private emp i.region##c.unemp || state:",
    stata_expanded = "mixed gsp private emp i.region c.unemp i.region#c.unemp || state:",
    r_call = "lmer(gsp ~ private + emp + factor(region)*unemp + (1|state), data=prod, REML=FALSE)",
    fe_map = c(reg("factor(region)", 2:9), unemp = "unemp",
               setNames(paste0(2:9, ".region#c.unemp"), paste0("factor(region)", 2:9, ":unemp"))),
    base = c("1b.region" = 0, "1b.region#co.unemp" = 0)),
  hwy_squared = list(
    stata = "mixed gsp private emp c.hwy#c.hwy || state:",
    r_call = "lmer(gsp ~ private + emp + I(hwy^2) + (1|state), data=prod, REML=FALSE)",
    fe_map = c("I(hwy^2)" = "c.hwy#c.hwy"),
    note = "c.hwy#c.hwy alone: the square of hwy without its main effect."),
  ib3_region = list(
    stata = "mixed gsp private emp ib3.region || state:",
    r_call = 'lmer(gsp ~ private + emp + relevel(factor(region), ref="3") + (1|state), data=prod, REML=FALSE)',
    fe_map = reg('relevel(factor(region), ref = "3")', setdiff(R, 3)),
    base = c("3b.region" = 0),
    note = "Same model as i_region (reparameterised): same llf and variance components."),
  ibn_region_nocons = list(
    stata = "mixed gsp private emp ibn.region, noconstant || state:",
    r_call = "lmer(gsp ~ 0 + private + emp + factor(region) + (1|state), data=prod, REML=FALSE)",
    fe_map = reg("factor(region)", R),
    note = "No constant; one indicator per level (R's full dummy coding when the intercept is removed). Same model as i_region."),
  i13_region = list(
    stata = "mixed gsp private emp i(1 3).region || state:",
    r_call = "lmer(gsp ~ private + emp + I(as.integer(region == 3)) + (1|state), data=prod, REML=FALSE)",
    fe_map = c("I(as.integer(region == 3))" = "3.region"),
    base = c("1b.region" = 0),
    note = paste(
      "i(1 3).region selects levels 1 and 3, and the default base (the lowest level, 1) still",
      "applies: Stata reports 1b.region as the (omitted) base and estimates 3.region only, so",
      "the model is gsp on private, emp and an indicator of region==3 (all other regions pooled",
      "with region 1 in the constant). Documented behaviour in Stata's factor-variable rules",
      "(i(numlist) keeps the base unless it is switched off, e.g. fvset base none region);",
      "see i13_region_nobase for both indicators.")),
  i13_region_nobase = list(
    stata = "fvset base none region; mixed gsp private emp i(1 3).region || state:",
    stata_alternative = "mixed gsp private emp 1.region 3.region || state:",
    r_call = "lmer(gsp ~ private + emp + I(as.integer(region == 1)) + I(as.integer(region == 3)) + (1|state), data=prod, REML=FALSE)",
    fe_map = c("I(as.integer(region == 1))" = "1.region", "I(as.integer(region == 3))" = "3.region"),
    note = paste("Indicators for levels 1 and 3 both (no base), with a constant: the other seven",
                 "regions form the reference. This is the literal 'indicators for levels 1 and 3 only'.")),
  fast_x_days_un = list(
    stata = "mixed reaction i.fast##c.days || subject: days, covariance(unstructured)",
    r_call = "lmer(reaction ~ factor(fast)*days + (days|subject), data=sleepf, REML=FALSE)",
    fe_map = c("factor(fast)1" = "1.fast", "factor(fast)1:days" = "1.fast#c.days"),
    base = c("0b.fast" = 0, "0b.fast#co.days" = 0),
    note = "fast = as.integer(days >= 5) (data/sleepstudy_fast.csv)."),
  pig_re_week_squared = list(
    stata = "mixed weight week || id: c.week#c.week",
    stata_alternative = "generate week2 = week^2; mixed weight week || id: week2  (labels id:var(week2), id:var(_cons))",
    r_call = 'lmer(weight ~ week + (1 + I(week^2) || id), data=pig, REML=FALSE, control=lmerControl(optimizer="bobyqa"))',
    fe_map = NULL,
    term_map = c("I(week^2)" = "c.week#c.week"),
    note = paste(
      "Random slope on week^2 and random intercept at id, independent covariance (Stata's default",
      "for a random slope; lme4's ||, which expands to (1|id) + (0 + I(week^2)|id)). Stata may",
      "refuse factor-variable notation in a random-effects equation (for i. terms it says 'must use",
      "R. when specifying factor variables in random-effects equations'); stata_alternative is",
      "the spelling with a generated variable, which fits the same model. lme4's default optimizer",
      "(nloptwrap) stops short here (max|grad| 0.0036, llf lower by 2.5e-6; see",
      "pig_re_week_squared_default_optimizer); bobyqa, Nelder_Mead and an L-BFGS-B polish of the",
      "profiled deviance all agree on this optimum (llf -868.8664991565).")),
  pig_re_week_squared_default_optimizer = list(
    stata = "mixed weight week || id: c.week#c.week",
    r_call = "lmer(weight ~ week + (1 + I(week^2) || id), data=pig, REML=FALSE)",
    fe_map = NULL,
    term_map = c("I(week^2)" = "c.week#c.week"),
    note = "lme4 defaults: converged short of the optimum (convergence warning recorded); use pig_re_week_squared.")
)

out <- list(
  how = paste(
    "lme4 ML fits (REML=FALSE) of Stata factor-variable models, with fixed effects under Stata's",
    "names (tests/reference/peers/factor_variables_lme4.R). Stata naming: i.region (levels 1..9,",
    "base 1) -> 2.region ... 9.region; i.region#c.unemp -> 2.region#c.unemp ...; i.a##c.x =",
    "i.a c.x i.a#c.x; c.hwy#c.hwy = hwy^2; ib3.region -> 1.region, 2.region, 4.region, ...;",
    "ibn.region with noconstant -> 1.region ... 9.region; _cons the constant (listed last).",
    "Each entry: stata (command), r_call (exact lme4 call; data as in 'data'), fe_map (lme4 fixef",
    "name -> Stata name), llf, fe, fe_se (sqrt(diag(vcov))), re (VarCorr under Stata labels),",
    "sigma2, varcorr (raw), base (the base levels Stata prints as 0 '(base)'; not estimated).",
    "Key order in fe follows Stata's coefficient table (R's term order, _cons last). 'tight':",
    "the same fit refitted with update(fit, control=lmerControl(optimizer='bobyqa',",
    "optCtrl=list(rhoend=1e-10))), a tighter optimum than lme4's default tolerances."),
  versions = versions(),
  data = list(prod = 'prod <- read.csv("mixedlm_ext/datasets/productivity.csv")',
              pig = 'pig <- read.csv("mixedlm_ext/datasets/pig.csv")',
              sleepf = 'sleepf <- read.csv("tests/reference/peers/data/sleepstudy_fast.csv")  # fast = as.integer(days >= 5)'),
  models = list()
)

for (nm in names(models)) {
  m <- models[[nm]]
  r <- eval_call(m$r_call)
  f <- r$value
  if (inherits(f, "fit_error")) stop(nm, ": ", f$message)
  fn <- names(fixef(f))
  unmapped <- setdiff(fn, c(names(m$fe_map), "(Intercept)", "private", "emp", "week", "days", "unemp"))
  if (length(unmapped)) stop(nm, ": unmapped fixef names ", paste(unmapped, collapse = ", "))
  rec <- fit_record(f, m$r_call, fe_map = m$fe_map, term_map = m$term_map,
                    warnings = r$warnings, messages = r$messages)
  ent <- c(list(stata = m$stata), m[intersect(c("stata_expanded", "stata_alternative"), names(m))],
           list(fe_map = if (is.null(m$fe_map)) list() else as.list(m$fe_map)), rec)
  if (!is.null(m$base)) ent$base <- as.list(m$base)
  if (!is.null(m$note)) ent$note <- m$note
  out$models[[nm]] <- ent
}
## the three parameterisations of region must give one likelihood
ll <- sapply(out$models[c("i_region", "ib3_region", "ibn_region_nocons")], `[[`, "llf")
out$reparameterisation_check <- list(
  models = jarray(names(ll)), llf = ll, max_abs_diff = max(ll) - min(ll),
  cons_plus_region_effects_equal_ibn = local({
    a <- out$models$i_region$fe; b <- out$models$ibn_region_nocons$fe
    lv <- c(a[["_cons"]], a[["_cons"]] + unlist(a[paste0(2:9, ".region")]))
    max(abs(lv - unlist(b[paste0(1:9, ".region")])))
  }))
write_json_file(out, "factor_variables_lme4.json")
cat("wrote factor_variables_lme4.json\n")
