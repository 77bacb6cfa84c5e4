// Types of envscaler-runtime-client (pool_client.js); hand-written, kept in step with it.

/** A tool in OpenAI's `tools` format. */
export interface Tool {
  type: "function";
  function: { name: string; description: string; parameters: Record<string, unknown> };
}

export interface ToolError {
  kind: string;
  message: string;
}

export interface ResetResult {
  episode_id: string;
  scenario_id: string;
  task: string;
  state_json: string;
  state_sha256: string;
  state_error: ToolError | null;
  /** state_json, parsed. */
  state: unknown;
}

export interface CallResult {
  ok: boolean;
  /** The tool's return value (parsed result_json), null on error. */
  result: unknown;
  observation: string;
  /** Empty when ok, else e.g. "UNKNOWN_TOOL", "TOOL_EXCEPTION", "TIMEOUT". */
  errorKind: string;
  errorMessage: string;
  episodeBroken: boolean;
}

export interface CheckResult {
  index: number;
  check_item: string;
  outcome: string;
  message: string;
}

export interface Evaluation {
  scenario_id: string;
  reward: number;
  passed: number;
  total: number;
  checks: CheckResult[];
  message: string;
}

export interface EnvSummary {
  env_id: string;
  spec_hash: string;
  environment_summary: string;
  tools: { name: string; description: string; parameters_json: string }[];
  scenario_ids: string[];
}

export interface AcquireOptions {
  /** Reset to this scenario as part of the lease (default: none). */
  scenario?: string;
  /** Lease time to live; 0 takes the pool's default. */
  ttlSeconds?: number;
  /** The most the acquire takes, its Reset included (default 60): the deadline carried; an overloaded pool (RESOURCE_EXHAUSTED with grpc-retry-pushback-ms) is asked again within it. */
  waitSeconds?: number;
  seed?: number;
}

/** One leased container; call release() when done. */
export class PoolSession {
  readonly leaseId: string;
  readonly envId: string;
  episodeId: string;
  tools(): Promise<Tool[]>;
  reset(scenarioId: string, seed?: number): Promise<ResetResult>;
  /** `args` as an object, or a raw JSON string (an LLM's arguments, validated by the server). */
  call(name: string, args?: Record<string, unknown> | string): Promise<CallResult>;
  state(): Promise<{ state: unknown; sha256: string }>;
  evaluate(): Promise<Evaluation>;
  release(): Promise<void>;
}

export interface PoolOptions {
  /** The pool's bearer token (`pool --token-file`); default: ENVSCALER_TOKEN. */
  token?: string;
  /** PEM file of the CA that signed the pool's TLS certificate; turns TLS on. Default: ENVSCALER_CA_FILE. */
  caFile?: string;
}

/** A client of a running pool: "tcp:HOST:PORT", "HOST:PORT" or "unix:/path". */
export class Pool {
  constructor(address: string, options?: PoolOptions);
  acquire(envId: string, options?: AcquireOptions): Promise<PoolSession>;
  listEnvs(): Promise<EnvSummary[]>;
  close(): void;
}
