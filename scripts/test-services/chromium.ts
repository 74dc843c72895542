// Chromium for the browser tests: Debian's `chromium`, the binary `command -v chromium` names, or
// the one SLUICE_TEST_CHROMIUM names. Told to the tests as SLUICE_TEST_CHROMIUM.
import { type Probe, unusable } from './probe.js'
import { firstLine, forPerson, run, which } from './system.js'

export async function probeChromium(env: NodeJS.ProcessEnv): Promise<Probe> {
  const configured = env.SLUICE_TEST_CHROMIUM
  const path = which(configured || 'chromium', env)
  if (configured && !path) {
    return unusable(
      `SLUICE_TEST_CHROMIUM=${configured} is not an executable file`,
      'point it at a Chromium binary, or unset it to use `command -v chromium`',
    )
  }
  if (!path) return { state: 'missing', problem: 'chromium is not on PATH' }
  const version = await run([path, '--version'], { env, timeoutMs: 60_000 })
  const v = version.stdout.trim()
  if (version.code !== 0 || !/chrom/i.test(v)) {
    return unusable(
      `${path} --version failed: ${firstLine(version)}`,
      `reinstall it: ${forPerson(['apt-get', 'install', '--reinstall', '-y', 'chromium'])}`,
    )
  }
  return { state: 'ready', summary: `${path} (${v})`, env: { SLUICE_TEST_CHROMIUM: path } }
}
