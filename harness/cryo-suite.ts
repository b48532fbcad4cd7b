import anyTest, { type TestFn } from 'ava';
import { TestContainers } from './containers.js';
import { TestCryo, type TestCryoOptions } from './cryo.js';
import { requirePrerequisites } from './prerequisites.js';

export interface CryoSuiteContext {
  cryo: TestCryo;
  containers: TestContainers;
}

export interface CryoSuiteOptions<Extra> {
  /** The in-process cryo's settings. */
  cryo?: TestCryoOptions;
  /** Remove the containers after each test, not only at the end. */
  cleanEachTest?: boolean;
  /** Run the tests one after another. */
  serial?: boolean;
  /** What the suite adds to the context (made after the cryo), and how it goes at the end, whatever the outcome. */
  extra?: { make: () => Promise<Extra>; cleanUp?: (extra: Partial<Extra>) => Promise<void> };
}

/**
 * The `test` of an integration suite against one in-process cryo: prerequisites checked first, and the cryo and
 * every container the suite made removed at the end, whatever the outcome.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export function cryoSuite<Extra extends object = {}>(
  options: CryoSuiteOptions<Extra> = {},
): TestFn<CryoSuiteContext & Extra> {
  const test = (options.serial ? anyTest.serial : anyTest) as TestFn<CryoSuiteContext & Extra>;
  test.before(async (t) => {
    await requirePrerequisites();
    const cryo = await TestCryo.start(options.cryo);
    const containers = new TestContainers();
    t.context = { cryo, containers, ...((await options.extra?.make()) ?? {}) } as CryoSuiteContext & Extra;
  });
  if (options.cleanEachTest)
    test.afterEach.always(async (t) => {
      await t.context.containers.removeAll();
    });
  test.after.always(async (t) => {
    await t.context.containers?.removeAll();
    await t.context.cryo?.stop();
    if (t.context && options.extra?.cleanUp) await options.extra.cleanUp(t.context);
  });
  return test;
}
