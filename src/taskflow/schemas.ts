import { z } from "zod";

/** Field builders for the action inputs (actions.ts), as the 2026.9.6 plugin checks its fields. */
export const str = () => z.string().trim().min(1);
export const nullableStr = () => z.string().trim().min(1).nullable().optional();
export const json = () => z.json().nullable().optional();
export const revision = () => z.number().int().nonnegative();
export const notifyPolicySchema = z.enum(["done_only", "state_changes", "silent"]);
