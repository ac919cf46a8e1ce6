/**
 * The errors of annal: one base, AnnalError, with the protocol's error code,
 * and one class per kind of failure a caller handles differently.
 *
 * Invariant: every failure annald reports, and every request it did not
 * answer in time, reaches the caller as an AnnalError; nothing else is
 * thrown for them.
 */

export const UNSUPPORTED = 10;
export const UNAVAILABLE = 11;
export const INVALID = 12;
export const INTERNAL = 13;
export const NOT_FOUND = 20;
export const GONE = 21;

/** A request failed. `code` is the protocol's error code (docs/protocol.md
 * section 5), null for a concurrency error, which is not one; the message
 * is annald's text, for a person. */
export class AnnalError extends Error {
  readonly code: number | null;
  constructor(message: string, code: number | null = null) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The aggregate was not at the expected version; nothing was written.
 * `actualVersion` is the version annald found (null from an annald that does
 * not send it). */
export class ConcurrencyError extends AnnalError {
  readonly actualVersion: number | null;
  constructor(message: string, actualVersion: number | null = null) {
    super(message, null);
    this.actualVersion = actualVersion;
  }
}

/** Error 11, or no answer in time. `mayBeWritten` is false when annald said
 * that nothing was written (safe to send again as is), true when the outcome
 * is unknown (send appends again with the same event ids). */
export class Unavailable extends AnnalError {
  readonly mayBeWritten: boolean;
  constructor(message: string, mayBeWritten = true) {
    super(message, UNAVAILABLE);
    this.mayBeWritten = mayBeWritten;
  }
}

/** Error 12: the request broke a rule of the protocol (or a limit). */
export class InvalidRequest extends AnnalError {}

/** Error 20: no such snapshot, version or consumer group. */
export class NotFound extends AnnalError {}

/** Error 21: the aggregate was deleted for good (hard delete). */
export class Gone extends AnnalError {}

/** Error 10: this annald does not know the command. */
export class Unsupported extends AnnalError {}

/** Thrown by a group handler for an event that will never succeed: the
 * worker parks it, with the error's message as the reason, instead of asking
 * for it again. */
export class PermanentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PermanentError";
  }
}

const BY_CODE: Record<number, new (message: string, code: number) => AnnalError> = {
  [UNSUPPORTED]: Unsupported,
  [INVALID]: InvalidRequest,
  [NOT_FOUND]: NotFound,
  [GONE]: Gone,
};

export type Reply = Record<string, unknown>;

/** Returns a reply that is not an error; throws the AnnalError it is. */
export function check(reply: Reply): Reply {
  if (reply.type === "concurrency_error") {
    const actual = reply.actual_version;
    throw new ConcurrencyError(String(reply.error ?? "concurrency error"),
      typeof actual === "number" ? actual : null);
  }
  if (reply.type !== "error") return reply;
  const code = typeof reply.code === "number" ? reply.code : null;
  const text = String(reply.text ?? "");
  if (code === UNAVAILABLE) throw new Unavailable(text, !text.includes("nothing was written"));
  const Kind = code !== null ? BY_CODE[code] : undefined;
  throw Kind ? new Kind(text, code as number) : new AnnalError(text, code);
}
