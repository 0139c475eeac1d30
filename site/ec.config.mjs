// @ts-check
// Expressive Code options for Starlight (chapters' fenced code, <Region>,
// <Example>). They live here, not in astro.config.mjs, so that the <Code>
// component renders with exactly the same options.
import { defineEcConfig } from '@astrojs/starlight/expressive-code';
import { smtpdConf } from './src/grammars/smtpd-conf.mjs';

export default defineEcConfig({
  shiki: {
    langs: [smtpdConf],
  },
  styleOverrides: {
    codeFontSize: '0.85rem',
  },
});
