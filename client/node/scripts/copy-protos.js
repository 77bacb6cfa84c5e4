#!/usr/bin/env node
// prepack: ship the wire format inside the package (proto/ of the checkout is outside client/node);
// postpack (--clean): remove the copy, so the checkout has one source of truth.
"use strict";

const fs = require("node:fs");
const path = require("node:path");

const here = path.resolve(__dirname, "..");
const target = path.join(here, "proto");
fs.rmSync(target, { recursive: true, force: true });
if (!process.argv.includes("--clean")) {
  const source = path.resolve(here, "..", "..", "proto", "envscaler", "v1");
  fs.mkdirSync(path.join(target, "envscaler", "v1"), { recursive: true });
  for (const name of fs.readdirSync(source).filter((n) => n.endsWith(".proto"))) {
    fs.copyFileSync(path.join(source, name), path.join(target, "envscaler", "v1", name));
  }
}
