import { chromium } from 'playwright-core'

/** Renders an SVG document to a PNG file through Debian's Chromium, so the plots in docs/ are reproducible from bench/results. */
export async function writePng (svg: string, width: number, height: number, path: string): Promise<void> {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync'] })
  try {
    const page = await browser.newPage({ viewport: { width, height } })
    await page.setContent(svg)
    await page.screenshot({ path })
  } finally {
    await browser.close()
  }
}
