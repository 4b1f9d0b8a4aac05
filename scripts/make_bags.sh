#!/usr/bin/env bash
# Regenerate the committed bags from a live run of the stack (whenever a message must change).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
name=minimart_two_shoppers
rm -rf "out/bags/$name"
storefuse demo --quiet --rate 3 --scenario "scenarios/$name.yaml" --out "out/bags/$name"
rm -rf "bags/$name"
mkdir -p bags
cp -r "out/bags/$name/bag" "bags/$name"
cp "out/bags/$name/ground_truth.json" "bags/$name.ground_truth.json"
echo "bags/$name: $(du -sh "bags/$name" | cut -f1)"
