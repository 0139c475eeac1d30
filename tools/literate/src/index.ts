export * from './problems.ts';
export * from './paths.ts';
export * from './book.ts';
export * from './regions.ts';
export * from './examples.ts';
export * from './chapters.ts';
