#!/bin/bash
# Rebuild three_viewer.min.js: the parts of three.js (MIT, LICENSE.three.txt) that the
# viewer uses, as one minified script defining the global THREE. Needs node + npm.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
cd "$tmp"
npm init -y -q > /dev/null
npm install -q three@0.187.0 esbuild@0.28.2
cp "$here/three_entry.js" entry.js
./node_modules/.bin/esbuild entry.js --bundle --format=iife --global-name=THREE --minify \
    --legal-comments=eof --outfile="$here/three_viewer.min.js"
cp node_modules/three/LICENSE "$here/LICENSE.three.txt"
rm -rf "$tmp"
