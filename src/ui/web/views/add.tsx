// Adding a plan (YAML or JSON, the format of roster add --file), all or nothing.
import { useState } from "preact/hooks";
import { api, type ApiError, type Dict } from "../client";
import { Section, TaskLink } from "../components/common";

const PLAN_EXAMPLE = `tasks:
  - ref: build
    persona: implementer
    title: Build the thing
  - persona: reviewer
    title: Review the thing
    dependsOn: [build]
`;

export function AddPage() {
  const [format, setFormat] = useState<"yaml" | "json">("yaml");
  const [text, setText] = useState(PLAN_EXAMPLE);
  const [result, setResult] = useState<Dict | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    setResult(null);
    try {
      setResult(await api("plans", { method: "POST", body: { format, text } }));
    } catch (err) {
      setError(err as ApiError);
    }
  };
  return (
    <Section title="Add a plan" id="h-add">
      <form onSubmit={submit} class="plan">
        <p class="muted">
          The plan file format of <code>roster add --file</code>: <code>{"{ tasks: [{ ref, persona, title, dependsOn, … }] }"}</code>, added all or nothing.
        </p>
        <label>
          format{" "}
          <select value={format} onChange={(e) => setFormat((e.target as HTMLSelectElement).value as "yaml" | "json")} name="format">
            <option value="yaml">YAML</option>
            <option value="json">JSON</option>
          </select>
        </label>
        <textarea name="plan" rows={14} value={text} onInput={(e) => setText((e.target as HTMLTextAreaElement).value)} aria-label="plan" spellcheck={false} />
        <button type="submit">Add plan</button>
      </form>
      {error !== null ? (
        <p class="error" role="alert">
          {error.code}: {error.message}
        </p>
      ) : null}
      {result !== null ? (
        <p role="status">
          Added{" "}
          {result.ids.map((id: number) => (
            <>
              <TaskLink id={id} />{" "}
            </>
          ))}
        </p>
      ) : null}
    </Section>
  );
}
