// @serialport/binding-mock's package "exports" give its ESM build no types
// under NodeNext; describe the ESM module with the types serialport ships.
declare module '@serialport/binding-mock' {
  import type { SerialPortMock } from 'serialport';
  export const MockBinding: typeof SerialPortMock.binding;
  export type MockPortBinding = Awaited<ReturnType<typeof SerialPortMock.binding.open>>;
}
