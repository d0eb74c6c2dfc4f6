import { readFileSync, statSync } from "node:fs";
import { extname } from "node:path";
import { parseDocument } from "yaml";
import { RosterError, coerceError } from "../errors.js";
import { formatIssues, planSchema, type TaskInput } from "../store/index.js";

/**
 * Reads a plan file for `roster add --file`: `{ tasks: [...] }` (planSchema, the
 * shape MCP's create_tasks takes) as JSON (`.json`) or YAML (`.yaml`, `.yml`).
 * Every error names the file, and the line for a syntax error.
 */
export function readPlanFile(path: string): TaskInput[] {
  const ext = extname(path).toLowerCase();
  if (ext !== ".json" && ext !== ".yaml" && ext !== ".yml") {
    throw new RosterError("VALIDATION", `${path}: a plan file must end in .json, .yaml or .yml`, { details: { file: path } });
  }
  const text = readInputFile(path, "plan file");
  return parsePlanText(path, text, ext === ".json" ? "json" : "yaml");
}

/**
 * The text of a file the user named (a plan, a schedules file); a file that cannot be
 * read is refused as VALIDATION naming it and why, `noun` saying what it should have been.
 */
export function readInputFile(path: string, noun: string): string {
  try {
    if (statSync(path).isDirectory()) throw new RosterError("VALIDATION", `${path}: is a folder, not a ${noun}`, { details: { file: path } });
    return readFileSync(path, "utf8");
  } catch (error) {
    if (error instanceof RosterError) throw error;
    const code = (error as { code?: unknown }).code;
    const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : coerceError(error).message;
    throw new RosterError("VALIDATION", `${path}: cannot read ${noun} (${why})`, { cause: error, details: { file: path } });
  }
}

/** A plan's text, checked as readPlanFile checks a file's (the dashboard's "add a plan"); `path` names it in errors. */
export function parsePlanText(path: string, text: string, format: "json" | "yaml"): TaskInput[] {
  const data = format === "json" ? parseJson(path, text.replace(/^\uFEFF/, "")) : parseYamlText(path, text);
  const parsed = planSchema.safeParse(data);
  if (!parsed.success) {
    throw new RosterError("VALIDATION", `${path}: ${formatIssues(parsed.error.issues, "plan")}`, { details: { file: path } });
  }
  return parsed.data.tasks as TaskInput[];
}

/**
 * A YAML document, or VALIDATION on one line naming the file and where its first
 * syntax error is (`FILE: line 4 column 1: not valid YAML (…)`); duplicate keys are errors.
 */
export function parseYamlText(path: string, text: string): unknown {
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  const first = doc.errors[0];
  if (first !== undefined) {
    const { line, column } = lineColumn(text, first.pos[0]);
    throw new RosterError("VALIDATION", `${path}: line ${line} column ${column}: not valid YAML (${first.message.split("\n")[0]})`, {
      details: { file: path, line, column },
    });
  }
  return doc.toJS();
}

function parseJson(path: string, text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    const offset = jsonErrorOffset(text);
    const { line, column } = lineColumn(text, offset);
    throw new RosterError("VALIDATION", `${path}: line ${line} column ${column}: not valid JSON (${coerceError(error).message})`, {
      cause: error,
      details: { file: path, line, column },
    });
  }
}

function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  const column = offset - (before.lastIndexOf("\n") + 1) + 1;
  return { line, column };
}

/**
 * Where JSON.parse gave up: a small scanner over the JSON grammar, used only after
 * JSON.parse failed, because V8's messages do not always carry a position.
 */
export function jsonErrorOffset(text: string): number {
  let i = 0;
  const ws = (): void => {
    while (i < text.length && " \t\n\r".includes(text[i]!)) i++;
  };
  const fail = (): never => {
    throw i;
  };
  const literal = (word: string): void => {
    if (text.startsWith(word, i)) i += word.length;
    else fail();
  };
  const string = (): void => {
    if (text[i] !== '"') fail();
    i++;
    while (i < text.length && text[i] !== '"') {
      const c = text.charCodeAt(i);
      if (c < 0x20) fail();
      if (text[i] === "\\") {
        i++;
        if (text[i] === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail();
          i += 5;
          continue;
        }
        if (!'"\\/bfnrt'.includes(text[i] ?? "x")) fail();
      }
      i++;
    }
    if (i >= text.length) fail();
    i++;
  };
  const number = (): void => {
    const match = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
    if (match === null) fail();
    i += match![0].length;
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      ws();
      if (text[i] === "}") {
        i++;
        return;
      }
      for (;;) {
        ws();
        string();
        ws();
        if (text[i] !== ":") fail();
        i++;
        value();
        ws();
        if (text[i] === ",") i++;
        else if (text[i] === "}") {
          i++;
          return;
        } else fail();
      }
    } else if (c === "[") {
      i++;
      ws();
      if (text[i] === "]") {
        i++;
        return;
      }
      for (;;) {
        value();
        ws();
        if (text[i] === ",") i++;
        else if (text[i] === "]") {
          i++;
          return;
        } else fail();
      }
    } else if (c === '"') string();
    else if (c === "t") literal("true");
    else if (c === "f") literal("false");
    else if (c === "n") literal("null");
    else number();
  };
  try {
    value();
    ws();
    if (i < text.length) fail();
  } catch (offset) {
    if (typeof offset === "number") return Math.min(offset, text.length);
    throw offset;
  }
  return text.length;
}
