#!/bin/sh
# Regenerate every file in tests/reference/peers (run from anywhere).
# Needs R with lme4, emmeans, jsonlite; python with numpy, pandas, statsmodels.
set -e
cd "$(dirname "$0")/../../.."
Rscript tests/reference/peers/trust_lme4.R          # also runs trust_lme4_mix1_statsmodels.py
python tests/reference/peers/statsmodels_spellings.py   # also runs statsmodels_spellings_lme4.R
Rscript tests/reference/peers/profile_ci_lme4.R
python tests/reference/peers/make_boot4000.py
Rscript tests/reference/peers/bootstrap_lme4.R
Rscript tests/reference/peers/margins_emmeans.R
Rscript tests/reference/peers/factor_variables_lme4.R
Rscript tests/reference/peers/optimizer_check_lme4.R
python -c "import json, glob; [json.load(open(f)) for f in glob.glob('tests/reference/peers/*.json')]; print('all JSON files load')"
