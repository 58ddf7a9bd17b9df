/**
 * Preloaded into every process the bench starts (with --expose-gc): SIGUSR2 runs a full garbage
 * collection, so the memory scenario compares memory the process holds, not how far its collector
 * happened to have got at the moment of the sample.
 */
process.on('SIGUSR2', () => (globalThis as { gc?: () => void }).gc?.());
