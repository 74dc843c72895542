// Builds the dashboard into dist/dashboard (scripts/build.mjs runs it at `npm run build`): plain
// files the admin plugin serves at /dashboard, with no inline script or style (the page's CSP
// allows neither) and every asset named by its hash.
import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vite'

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  // Relative URLs: the page works under any prefix a reverse proxy puts in front of /dashboard/.
  base: './',
  publicDir: 'public',
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: fileURLToPath(new URL('../dist/dashboard', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    // No data: URLs (the CSP allows images from the page's origin only) and no inline scripts.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    reportCompressedSize: false,
  },
})
