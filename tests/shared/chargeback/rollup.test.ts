import { rollUpDay, versionOf } from '../../../shared/chargeback/rollup';
import { usageAggregate } from '../../fixtures/usage';

describe('rollUpDay', () => {
  const rows = [
    usageAggregate({ id: 'w1', department: 'a', cost: '2.5', windowId: '20260402T1000Z', requests: 2 }),
    usageAggregate({ id: 'w2', department: 'a', cost: '2.5', windowId: '20260402T1015Z', requests: 3 }),
    usageAggregate({ id: 'w3', department: 'b', cost: '1', windowId: '20260402T1015Z' }),
    usageAggregate({
      id: 'w4',
      department: 'a',
      cost: '2.5',
      windowId: '20260402T1030Z',
      meter: 'output-tokens',
    }),
  ];

  it('sums a day’s window rows per key, exactly, into the department’s partition', () => {
    const daily = rollUpDay(rows);
    expect(daily).toHaveLength(3);
    const a = daily.find((d) => d.department === 'a' && d.meter === 'input-tokens');
    expect(a).toMatchObject({
      type: 'daily',
      pk: '2026-04|a',
      day: '2026-04-02',
      quantity: '2000000',
      pricingQuantity: '2',
      cost: '5',
      requests: 5,
    });
    expect(a?.id).toMatch(/^daily\|2026-04-02\|[0-9a-f]{40}$/);
  });

  it('is deterministic: the same rows in any order give the same documents', () => {
    expect(rollUpDay([...rows].reverse())).toEqual(rollUpDay(rows));
  });

  it('refuses a row that is not priced yet', () => {
    expect(() => rollUpDay([{ ...rows[0]!, pricePending: true }])).toThrow('row w1 is not priced yet');
  });

  it('versions a set, not a sequence', () => {
    expect(versionOf(['x', 'y'])).toBe(versionOf(['y', 'x']));
    expect(versionOf(['x', 'y'])).not.toBe(versionOf(['x']));
  });
});
