import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";
import { SecuritySummaryReporter } from "./test/security/summary-reporter.js";

const src = (p: string): string => fileURLToPath(new URL(p, import.meta.url));

// Tests import workspace packages from source, so `vitest` needs no build for unit tests.
// Suites that spawn the CLIs as child processes use the built `dist/` (npm test builds first).
const alias = {
  "@lanekeeper/shared": src("./packages/shared/src/index.ts"),
  "@lanekeeper/harness": src("./test/harness/src/index.ts"),
  "@lanekeeper/testing": src("./test/support/src/index.ts"),
};

export default defineConfig({
  resolve: { alias },
  test: {
    // The security summary prints only when security files ran (npm run test:security, npm test).
    reporters: ["default", new SecuritySummaryReporter()],
    projects: [
      {
        resolve: { alias },
        test: {
          name: "unit",
          include: ["packages/*/src/**/*.test.ts", "test/harness/src/**/*.test.ts", "scripts/**/*.test.mjs"],
          testTimeout: 20_000,
        },
      },
      {
        resolve: { alias },
        test: {
          name: "security",
          include: ["test/security/**/*.test.ts"],
          testTimeout: 60_000,
          // The summary reporter reads each case's source from its location to list the reasons it asserts.
          includeTaskLocation: true,
        },
      },
      {
        resolve: { alias },
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts", "test/harness/test/**/*.test.ts"],
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
      {
        resolve: { alias },
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
