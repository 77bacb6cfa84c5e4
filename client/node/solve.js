#!/usr/bin/env node
// Solve one scenario through a pool: node solve.js ADDRESS ENV_ID SCENARIO_ID CALLS.jsonl
// Prints {"reward": ..., "steps": ..., "errors": [...]} as JSON.
"use strict";

const fs = require("node:fs");
const { Pool } = require("./pool_client");

async function main() {
  const [address, envId, scenarioId, callsFile] = process.argv.slice(2);
  if (!callsFile) {
    console.error("usage: node solve.js ADDRESS ENV_ID SCENARIO_ID CALLS.jsonl");
    process.exit(2);
  }
  const calls = fs.readFileSync(callsFile, "utf8").split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
  const pool = new Pool(address);
  const session = await pool.acquire(envId, { scenario: scenarioId });
  try {
    const tools = await session.tools();
    const errors = [];
    for (const call of calls) {
      const result = await session.call(call.name, call.arguments);
      if (!result.ok) errors.push(`${call.name}: ${result.errorKind}`);
    }
    const evaluation = await session.evaluate();
    console.log(JSON.stringify({ reward: evaluation.reward, steps: calls.length, tools: tools.length, errors }));
  } finally {
    await session.release();
    pool.close();
  }
}

main().catch((error) => {
  console.error(error.message);
  process.exit(1);
});
