import { describe, expect, it } from "vitest";
import { dependencyPath, dependencyPathAsync } from "../../src/store/add-dependency.js";

/** task → its direct dependencies. */
const graph = new Map<number, number[]>([
  [1, [2, 3]],
  [2, [4]],
  [3, [4, 5]],
  [4, [6]],
  [5, [6]],
  [6, []],
  [7, [7, 1]],
]);
const deps = (id: number): number[] => graph.get(id) ?? [];

describe("dependencyPath, the cycle check's search for every engine", () => {
  it("finds a shortest path from a task to one it depends on, both ends included", async () => {
    expect(dependencyPath(1, 6, deps)).toEqual([1, 2, 4, 6]);
    expect(dependencyPath(3, 5, deps)).toEqual([3, 5]);
    expect(await dependencyPathAsync(1, 6, async (id) => deps(id))).toEqual([1, 2, 4, 6]);
  });

  it("answers null when the task does not depend on the other, reading each task once", async () => {
    const read: number[] = [];
    expect(dependencyPath(2, 5, (id) => (read.push(id), deps(id)))).toBeNull();
    expect(read).toEqual([2, 4, 6]);
    expect(await dependencyPathAsync(6, 1, async (id) => deps(id))).toBeNull();
  });

  it("is the one-node path from a task to itself, and ends on a graph that already loops", () => {
    expect(dependencyPath(4, 4, deps)).toEqual([4]);
    expect(dependencyPath(7, 6, deps)).toEqual([7, 1, 2, 4, 6]);
    expect(dependencyPath(7, 99, deps)).toBeNull();
  });
});
