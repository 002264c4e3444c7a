import { describe, expect, it } from "vitest";
import { ApiFailure } from "./api/client";
import { apiErrorText, errorText } from "./errors";

describe("error texts", () => {
  const refused = Object.assign(Object.create(ApiFailure.prototype) as ApiFailure, { message: "Not allowed." });
  it("show the server's message, else the fallback", () => {
    expect(apiErrorText(refused, "Failed.")).toBe("Not allowed.");
    expect(apiErrorText(new TypeError("Failed to fetch"), "Failed.")).toBe("Failed.");
    expect(apiErrorText("x", "Failed.")).toBe("Failed.");
  });
  it("errorText also shows the app's own checks", () => {
    expect(errorText(refused, "Failed.")).toBe("Not allowed.");
    expect(errorText(new Error("No user is called “x”."), "Failed.")).toBe("No user is called “x”.");
    expect(errorText(undefined, "Failed.")).toBe("Failed.");
  });
});
