// Copy the minified browser builds installed by `npm ci` into the Django static folder (served by Django, no CDN).
"use strict";
const fs = require("fs");
const path = require("path");

const OUT = path.join(__dirname, "..", "static", "web", "vendor");
const FILES = [
  ["cytoscape/dist/cytoscape.min.js", "cytoscape.min.js"],
  ["cytoscape/LICENSE", "cytoscape.LICENSE"],
  ["htmx.org/dist/htmx.min.js", "htmx.min.js"],
  ["htmx.org/LICENSE", "htmx.LICENSE"],
];

fs.mkdirSync(OUT, { recursive: true });
for (const [from, to] of FILES) {
  const src = path.join(__dirname, "node_modules", from);
  if (!fs.existsSync(src)) {
    console.error(`vendor: ${src} is missing; run npm ci in ${__dirname} first`);
    process.exit(1);
  }
  fs.copyFileSync(src, path.join(OUT, to));
  console.log(`vendor: ${from} -> static/web/vendor/${to}`);
}
