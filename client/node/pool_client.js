// Node.js client of the envscaler-runtime pool. The wire format is loaded from
// proto/ at run time with @grpc/proto-loader: no generated code to keep in step.
"use strict";

const path = require("node:path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const fs = require("node:fs");

// The installed package ships its own copy (prepack); in the checkout, the repository's proto/.
const PROTO_ROOT = [path.join(__dirname, "proto"), path.resolve(__dirname, "..", "..", "proto")]
  .find((root) => fs.existsSync(path.join(root, "envscaler", "v1", "pool.proto")));

function loadPackage() {
  if (!PROTO_ROOT) throw new Error("envscaler-runtime-client: envscaler/v1/pool.proto not found (a broken install)");
  const definition = protoLoader.loadSync(path.join(PROTO_ROOT, "envscaler/v1/pool.proto"), {
    includeDirs: [PROTO_ROOT],
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition).envscaler.v1;
}

function target(address) {
  return address.startsWith("tcp:") ? address.slice(4) : address;
}

function promised(client, method, request, timeoutSeconds = 60) {
  const deadline = new Date(Date.now() + timeoutSeconds * 1000);
  return new Promise((resolve, reject) => {
    client[method](request, { deadline }, (error, response) => {
      if (error) reject(failed(method, error));
      else resolve(response);
    });
  });
}

// An overloaded pool refuses with RESOURCE_EXHAUSTED and says how long to wait (trailing metadata
// grpc-retry-pushback-ms): asked again after that long while the caller's own deadline has room; any other
// refusal, or one without the hint, is the caller's (as envscaler/client/retry.py).
function retryDelayMs(error, deadline) {
  if (!error || error.code !== grpc.status.RESOURCE_EXHAUSTED || !error.metadata) return null;
  const [hint] = error.metadata.get("grpc-retry-pushback-ms");
  const ms = Number.parseInt(String(hint ?? ""), 10);
  if (!Number.isFinite(ms) || ms < 0) return null;
  return ms < deadline - Date.now() ? ms : null;
}

function failed(method, error) {
  return new Error(`${method}: ${grpc.status[error.code]}: ${error.details}`);
}

function attempt(client, method, request, deadline) {
  return new Promise((resolve, reject) => {
    client[method](request, { deadline: new Date(deadline) }, (error, response) => (error ? reject(error) : resolve(response)));
  });
}

// `makeRequest(remainingMs)`: each try's request, given what is left of the deadline.
async function retried(client, method, makeRequest, timeoutSeconds) {
  const deadline = Date.now() + timeoutSeconds * 1000;
  for (;;) {
    try {
      return await attempt(client, method, makeRequest(Math.max(deadline - Date.now(), 1)), deadline);
    } catch (error) {
      const delay = retryDelayMs(error, deadline);
      if (delay === null) throw failed(method, error);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

class PoolSession {
  constructor(client, lease) {
    this.client = client;
    this.leaseId = lease.lease_id;
    this.envId = lease.env_id;
    this.episodeId = lease.reset ? lease.reset.episode_id : "";
  }

  async tools() {
    const info = await promised(this.client, "Describe", { lease_id: this.leaseId });
    return info.tools.map((t) => ({
      type: "function",
      function: { name: t.name, description: t.description, parameters: JSON.parse(t.parameters_json || "{}") },
    }));
  }

  async reset(scenarioId, seed = 0) {
    const reply = await promised(this.client, "Reset", {
      lease_id: this.leaseId, request: { scenario_id: scenarioId, seed },
    });
    this.episodeId = reply.episode_id;
    return { ...reply, state: JSON.parse(reply.state_json) };
  }

  async call(name, args = {}) {
    const reply = await promised(this.client, "CallTool", {
      lease_id: this.leaseId,
      request: { episode_id: this.episodeId, name, arguments_json: typeof args === "string" ? args : JSON.stringify(args) },
    });
    const failed = reply.error && reply.error.kind !== "ERROR_KIND_UNSPECIFIED";
    return {
      ok: !failed,
      result: reply.result_json ? JSON.parse(reply.result_json) : null,
      observation: reply.observation,
      errorKind: failed ? reply.error.kind : "",
      errorMessage: failed ? reply.error.message : "",
      episodeBroken: reply.episode_broken,
    };
  }

  async state() {
    const reply = await promised(this.client, "GetState", { lease_id: this.leaseId, request: { episode_id: this.episodeId } });
    return { state: JSON.parse(reply.state_json), sha256: reply.sha256 };
  }

  async evaluate() {
    return promised(this.client, "Evaluate", { lease_id: this.leaseId, request: { episode_id: this.episodeId } }, 180);
  }

  async release() {
    await promised(this.client, "Release", { lease_id: this.leaseId });
  }
}

class Pool {
  constructor(address) {
    const v1 = loadPackage();
    this.client = new v1.PoolService(target(address), grpc.credentials.createInsecure());
  }

  // `waitSeconds`: the most this takes, the scenario's Reset included: the deadline carried (no padding).
  async acquire(envId, { scenario = "", ttlSeconds = 0, waitSeconds = 60, seed = 0 } = {}) {
    const lease = await retried(this.client, "Acquire", (remainingMs) => ({
      env_id: envId, scenario_id: scenario, lease_ttl_ms: ttlSeconds * 1000, wait_ms: Math.floor(remainingMs), seed,
    }), waitSeconds);
    return new PoolSession(this.client, lease);
  }

  async listEnvs() {
    return (await promised(this.client, "ListEnvs", {})).envs;
  }

  close() {
    this.client.close();
  }
}

module.exports = { Pool, PoolSession };
