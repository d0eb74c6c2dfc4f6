// The dashboard's front end (src/ui/web) → dist/src/ui/public, served by src/ui/server.ts.
// Run by `npm run build` after tsc; `vite build --config src/ui/web/vite.config.mjs`.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const here = fileURLToPath(new URL(".", import.meta.url));

export default defineConfig({
  root: here,
  base: "./",
  // "info" prints each output file with its size (and gzip size), so a build shows what the bundle weighs.
  logLevel: "info",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: fileURLToPath(new URL("../../../dist/src/ui/public/", import.meta.url)),
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    reportCompressedSize: true,
    chunkSizeWarningLimit: 400,
  },
});
