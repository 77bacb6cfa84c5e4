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

function isLoopback(address) {
  if (address.startsWith("unix:")) return true;
  const host = address.replace(/^tcp:/, "").replace(/:[^:]*$/, "").replace(/^\[|\]$/g, "");
  return host === "localhost" || /^127\./.test(host) || host === "::1";
}

// TLS when given a CA (caFile, or ENVSCALER_CA_FILE); the pool's bearer token (token, or ENVSCALER_TOKEN) on every
// call. A token goes in the clear only to this machine, as in the Python client (envscaler/client/auth.py).
function credentialsFor(address, { token, caFile } = {}) {
  token = (token === undefined ? process.env.ENVSCALER_TOKEN || "" : token).trim();
  caFile = caFile === undefined ? process.env.ENVSCALER_CA_FILE || "" : caFile;
  if (!caFile) {
    if (token && !isLoopback(address)) {
      throw new Error(`a token goes to ${address} only over TLS: pass caFile (or set ENVSCALER_CA_FILE) with the CA ` +
        "that signed the server's certificate");
    }
    if (!token) return { credentials: grpc.credentials.createInsecure(), options: {} };
  }
  let channel = grpc.credentials.createInsecure();
  if (caFile) {
    let ca;
    try {
      ca = fs.readFileSync(caFile);
    } catch (error) {
      throw new Error(`caFile ${caFile}: ${error.code === "ENOENT" ? "no such file" : error.message}`);
    }
    channel = grpc.credentials.createSsl(ca);
  }
  // grpc-js attaches call credentials only to secure channels: on a plaintext one (this machine only) the token
  // rides in an interceptor instead.
  const withToken = (options, nextCall) => new grpc.InterceptingCall(nextCall(options), {
    start(metadata, listener, next) {
      metadata.set("authorization", `Bearer ${token}`);
      next(metadata, listener);
    },
  });
  return { credentials: channel, options: token ? { interceptors: [withToken] } : {} };
}

class Pool {
  /** options: { token, caFile } (defaults: ENVSCALER_TOKEN, ENVSCALER_CA_FILE). */
  constructor(address, options = {}) {
    const v1 = loadPackage();
    const { credentials, options: clientOptions } = credentialsFor(address, options);
    this.client = new v1.PoolService(target(address), credentials, clientOptions);
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
