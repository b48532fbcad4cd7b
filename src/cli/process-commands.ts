import { pick, pidOf, positiveInt, seg, type CommandContext } from './cli-support.js';

/** `cryo inspect`, `cryo preflight` and `cryo operators`: what a process tree or a stream job holds. */
export function addProcessCommands({ program, run }: CommandContext): void {
  program
    .command('inspect')
    .description('what a process tree holds, from /proc')
    .argument('<pid>', 'process id', positiveInt)
    .action(run(async (client, pid: number) => client.json('GET', `/v1/processes/${pid}`)));

  program
    .command('preflight')
    .description('whether CRIU can dump a container (or, with --pid, a process tree), and why not')
    .argument('<target>', 'container name or id, or a pid with --pid')
    .option('--pid', 'the target is a process id')
    .option('--tcp-established', 'established TCP connections will be kept')
    .option('--file-locks', 'file locks will be dumped')
    .option('--external-unix-sockets', 'unix sockets with a peer outside will be dumped')
    .action(
      run(async (client, target: string, o: Record<string, unknown>) => {
        const flags = Object.keys(pick(o, ['tcpEstablished', 'fileLocks', 'externalUnixSockets']));
        const query = flags.length > 0 ? `?${flags.map((f) => `${f}=true`).join('&')}` : '';
        return client.json(
          'GET',
          o.pid
            ? `/v1/processes/${pidOf(target)}/preflight${query}`
            : `/v1/containers/${seg(target)}/preflight${query}`,
        );
      }),
    );

  program
    .command('operators')
    .description('the stream job in a container: its operators, key groups and last operator checkpoint')
    .argument('<container>', 'name or id')
    .action(
      run(async (client, container: string) =>
        client.json('GET', `/v1/containers/${seg(container)}/operators`),
      ),
    );
}
