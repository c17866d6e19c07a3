#!/usr/bin/env bash
# Reproduce the shipped grounded model (models/grounded-smollm2) from scratch, with the
# product's own learning loop:
#   1. the default corpus ingested into a data folder of its own (var/grounded-model);
#   2. the bootstrap dataset built from the corpus QA's dev splits (one document in five held
#      out, never trained on), in exactly the prompt layout the product serves;
#   3. a LoRA run on the base model, exported, gated against the base, registered;
#   4. the adapter and its manifest (data, config, gate figures) copied into the repository.
# Extra arguments go to `assistant learn bootstrap` (e.g. --max-medical 200 for a short run).
# Time on 2 CPU cores: about 1.5-2 h (most of it training); on a GPU, minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
shared="${SHARED_DATA:-../shared/data}"
export ASSISTANT_DATA_DIR="${ASSISTANT_DATA_DIR:-var/grounded-model}"
if [[ ! -e "$ASSISTANT_DATA_DIR/index/CURRENT" ]]; then
    .venv/bin/assistant ingest data/corpus/medical data/corpus/legal
fi
exec .venv/bin/assistant learn bootstrap \
    --medical-qa "$shared/medical/medquad_qa_dev.jsonl" \
    --legal-qa "$shared/legal/cuad_qa_dev.jsonl" \
    --publish "${PUBLISH_DIR:-models/grounded-smollm2}" "$@"
