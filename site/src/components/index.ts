// What chapters import: `import { Region, Example } from '@book/components';`
export { default as Region } from './Region.astro';
export { default as Example } from './Example.astro';
export { default as Contents } from './Contents.astro';
