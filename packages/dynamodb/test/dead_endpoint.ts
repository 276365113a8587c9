import { createServer, type Server, type Socket } from 'node:net'
import { freePort } from '@verrou/test-utils/free-port'

/** An endpoint where nothing listens: connections are refused at once. */
export async function refusingEndpoint(): Promise<string> {
  return `http://127.0.0.1:${await freePort()}`
}

/** An endpoint that accepts connections and never answers: only timeouts end a request. */
export async function silentEndpoint(): Promise<{ endpoint: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>()
  const server: Server = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (typeof address !== 'object' || address === null) throw new Error('no port')
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    close: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}
