/** The package's entry point for TypeScript and JavaScript users: the typed Batch API client. */
export { SollolClient, withRetries, type ClientOptions, type GatewayLimits, type ResultsOptions, type RetryPolicy, type WaitOptions } from './client.js';
export { SollolApiError, SollolConnectionError, isRetryable } from './errors.js';
export { isTerminal, type EmbedOptions, type JobEvent, type JobStatus, type JobView, type Progress, type ResultItem, type ResultsSummary, type RetryAnswer, type SubmitAnswer } from './types.js';
