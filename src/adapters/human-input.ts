// The error code by which an attempt asks a person instead of failing (the store parks the task): the store's own.
import { INPUT_REQUESTED } from "../store/humans.js";
import type { HumanInput } from "../store/types.js";

/** Longest question, in characters. */
export const QUESTION_MAX_CHARS = 16 * 1024;

/**
 * Thrown by ctx.askHuman (and by the shell adapter for a `::roster:ask` line):
 * the attempt ends here, its lease is released without counting it, and the task
 * waits in awaiting_input until `roster answer`. It crosses the thread boundary as
 * an ErrorObject with code INPUT_REQUESTED whose message is the question.
 */
export class HumanInputRequest extends Error {
  readonly code = INPUT_REQUESTED;
  readonly retryable = true;

  constructor(readonly question: string) {
    super(question);
    this.name = "HumanInputRequest";
  }
}

/**
 * ctx.askHuman for one attempt: the answer when an earlier attempt asked this very
 * question and a person answered it (task.inputs), so an adapter can simply run
 * again from the top; otherwise it throws HumanInputRequest and never returns.
 */
export function askHumanFor(inputs: readonly HumanInput[] | undefined): (question: string) => string {
  return (question) => {
    const text = String(question).trim().slice(0, QUESTION_MAX_CHARS);
    if (text === "") throw new TypeError("ctx.askHuman: the question must not be empty");
    for (let i = (inputs ?? []).length - 1; i >= 0; i--) {
      const input = inputs![i]!;
      if (input.question === text) return input.answer;
    }
    throw new HumanInputRequest(text);
  };
}
