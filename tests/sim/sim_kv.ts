/**
 * An instrumented Deno KV handle for the simulation. It wraps a real `Deno.openKv(":memory:")`
 * handle and hooks every atomic commit: before the commit a hook may run another actor's step
 * (a deterministic race: the commit's checks then fail and the code under test must re-read and
 * retry), a commit may throw `database is locked` before it applies, or apply and then throw
 * (a lost answer); every applied commit is reported with its mutations and the queue messages
 * written into it (the real transports write the message into the same atomic operation).
 *
 * @module
 */
import type { Dispatch, MessageRef } from "../../kv/changes.ts";

/** The value of a delete in {@link AppliedCommit.mutations}. */
export const DELETED: unique symbol = Symbol("deleted");

/** What an applied commit wrote. */
export interface AppliedCommit {
  /** Sets and deletes (value {@link DELETED}) in commit order. */
  mutations: Array<[Deno.KvKey, unknown]>;
  messages: Dispatch[];
  /** Messages removed by the commit (a same-process start), by the ref their dispatch got. */
  dropped: MessageRef[];
}

/** The simulation's hooks into every commit. */
export interface CommitHooks {
  /** Runs before the commit is sent (may run another actor's whole step). */
  before(op: SimOp): Promise<void>;
  /** Whether this commit fails with `database is locked` before it applies. */
  failBefore(): boolean;
  /** Whether this commit, once applied, throws `database is locked` anyway (lost answer). */
  failAfter(): boolean;
  /** Called once per applied commit, synchronously, before the caller sees the result. */
  applied(commit: AppliedCommit): void;
}

/** The error SQLite gives a busy writer; `kv/commit.ts` retries it. */
export function databaseLocked(): TypeError {
  return new TypeError("database is locked");
}

/** An atomic operation that records what it writes. */
export class SimOp {
  /** Mutations in the order they were added (`DELETED` for a delete). */
  readonly mutations: Array<[Deno.KvKey, unknown]> = [];
  readonly messages: Dispatch[] = [];
  readonly dropped: MessageRef[] = [];
  readonly #inner: Deno.AtomicOperation;
  readonly #hooks: CommitHooks;

  constructor(inner: Deno.AtomicOperation, hooks: CommitHooks) {
    this.#inner = inner;
    this.#hooks = hooks;
  }

  check(...checks: Deno.AtomicCheck[]): this {
    this.#inner.check(...checks);
    return this;
  }

  set(key: Deno.KvKey, value: unknown, options?: { expireIn?: number }): this {
    this.#inner.set(key, value, options);
    this.mutations.push([key, value]);
    return this;
  }

  delete(key: Deno.KvKey): this {
    this.#inner.delete(key);
    this.mutations.push([key, DELETED]);
    return this;
  }

  /**
   * A queue message written into this operation (the simulation's transport); returns the ref a
   * later commit removes it by, like `kv-table`'s message key.
   */
  enqueueDispatch(dispatch: Dispatch): MessageRef {
    this.messages.push(dispatch);
    return ["sim_queue", dispatch.token];
  }

  /** Removes a message sent earlier (the simulation's transport). */
  dropMessage(ref: MessageRef): void {
    this.dropped.push(ref);
  }

  sum(): this {
    throw new Error("SimOp.sum is not modelled");
  }

  min(): this {
    throw new Error("SimOp.min is not modelled");
  }

  max(): this {
    throw new Error("SimOp.max is not modelled");
  }

  enqueue(): this {
    throw new Error("SimOp.enqueue: the simulation's transport uses enqueueDispatch");
  }

  async commit(): Promise<Deno.KvCommitResult | Deno.KvCommitError> {
    await this.#hooks.before(this);
    if (this.#hooks.failBefore()) throw databaseLocked();
    const result = await this.#inner.commit();
    if (result.ok) {
      this.#hooks.applied({
        mutations: this.mutations,
        messages: this.messages,
        dropped: this.dropped,
      });
      if (this.#hooks.failAfter()) throw databaseLocked();
    }
    return result;
  }
}

type ListSelector = Deno.KvListSelector;
type ListOptions = Deno.KvListOptions;
/** Answers some `list` calls itself (`undefined`: the real handle answers). */
export type ListOverride = (
  selector: ListSelector,
  options?: ListOptions,
) => AsyncIterable<Deno.KvEntry<unknown>> | undefined;

/** The subset of `Deno.Kv` the code under test uses, over a real handle. */
export class SimKv {
  readonly inner: Deno.Kv;
  readonly hooks: CommitHooks;
  /** Overrides of `list` by prefix (a sweep's view of one owner); `null`: none. */
  readonly listOverride: ListOverride | null;

  constructor(
    inner: Deno.Kv,
    hooks: CommitHooks,
    listOverride: SimKv["listOverride"] = null,
  ) {
    this.inner = inner;
    this.hooks = hooks;
    this.listOverride = listOverride;
  }

  /** This handle as the code under test types it. */
  get kv(): Deno.Kv {
    return this as unknown as Deno.Kv;
  }

  get<T>(key: Deno.KvKey, options?: { consistency?: Deno.KvConsistencyLevel }) {
    return this.inner.get<T>(key, options);
  }

  getMany<T extends readonly unknown[]>(
    keyList: readonly [...{ [K in keyof T]: Deno.KvKey }],
    options?: { consistency?: Deno.KvConsistencyLevel },
  ) {
    return this.inner.getMany<T>(keyList, options);
  }

  list<T>(selector: ListSelector, options?: ListOptions): AsyncIterable<Deno.KvEntry<T>> {
    const over = this.listOverride?.(selector, options);
    if (over) return over as AsyncIterable<Deno.KvEntry<T>>;
    return this.inner.list<T>(selector, options);
  }

  atomic(): Deno.AtomicOperation {
    return new SimOp(this.inner.atomic(), this.hooks) as unknown as Deno.AtomicOperation;
  }

  async set(key: Deno.KvKey, value: unknown, options?: { expireIn?: number }) {
    const result = await this.inner.set(key, value, options);
    this.hooks.applied({ mutations: [[key, value]], messages: [], dropped: [] });
    return result;
  }

  async delete(key: Deno.KvKey) {
    await this.inner.delete(key);
    this.hooks.applied({ mutations: [[key, DELETED]], messages: [], dropped: [] });
  }

  watch(): never {
    throw new Error("SimKv.watch is not modelled (the simulation notices through re-reads)");
  }

  close(): void {
    this.inner.close();
  }
}
