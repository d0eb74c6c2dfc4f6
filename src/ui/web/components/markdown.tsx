import type { ComponentChildren } from "preact";

/** A small, safe markdown reader: headings, lists, code blocks, paragraphs, `code`, **bold**; text is never HTML. */
export function Markdown({ text }: { text: string }) {
  const blocks: ComponentChildren[] = [];
  const lines = text.split("\n");
  const inline = (s: string): ComponentChildren[] =>
    s.split(/(`[^`]+`|\*\*[^*]+\*\*)/).map((part) => (part.startsWith("`") && part.endsWith("`") && part.length > 1 ? <code>{part.slice(1, -1)}</code> : part.startsWith("**") && part.endsWith("**") && part.length > 3 ? <strong>{part.slice(2, -2)}</strong> : part));
  for (let i = 0; i < lines.length; ) {
    const line = lines[i]!;
    if (line.startsWith("```")) {
      const code: string[] = [];
      for (i++; i < lines.length && !lines[i]!.startsWith("```"); i++) code.push(lines[i]!);
      i++;
      blocks.push(<pre class="json">{code.join("\n")}</pre>);
    } else if (/^#{1,6} /.test(line)) {
      const level = Math.min(6, line.indexOf(" ") + 2);
      const H = `h${level}` as "h3";
      blocks.push(<H>{inline(line.replace(/^#+ /, ""))}</H>);
      i++;
    } else if (/^\s*([-*]|\d+\.) /.test(line)) {
      const items: string[] = [];
      for (; i < lines.length && /^\s*([-*]|\d+\.) /.test(lines[i]!); i++) items.push(lines[i]!.replace(/^\s*([-*]|\d+\.) /, ""));
      blocks.push(
        <ul>
          {items.map((it) => (
            <li>{inline(it)}</li>
          ))}
        </ul>,
      );
    } else if (line.trim() === "") i++;
    else {
      const para: string[] = [];
      for (; i < lines.length && lines[i]!.trim() !== "" && !/^(#{1,6} |```|\s*([-*]|\d+\.) )/.test(lines[i]!); i++) para.push(lines[i]!);
      blocks.push(<p>{inline(para.join(" "))}</p>);
    }
  }
  return <div class="markdown">{blocks}</div>;
}
