using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using CredBroker.Server.Auth;

namespace CredBroker.Server.WebConsole;

/// <summary>The signed-in operator as the console session cookie carries it: subject, roles, how they signed in.</summary>
internal sealed record ConsoleUser(string Subject, IReadOnlySet<OperatorRole> Roles, string Method)
{
    public const string SubjectClaim = "sub";
    public const string RoleClaim = "role";
    public const string MethodClaim = "amr";

    public static ConsoleUser? From(ClaimsPrincipal principal)
    {
        if (principal.Identity?.IsAuthenticated != true || principal.FindFirst(SubjectClaim)?.Value is not { Length: > 0 } subject)
        {
            return null;
        }

        var roles = principal.FindAll(RoleClaim).Select(c => Enum.TryParse<OperatorRole>(c.Value, ignoreCase: true, out var role) ? role : (OperatorRole?)null)
            .OfType<OperatorRole>().ToHashSet();
        return new ConsoleUser(subject, roles, principal.FindFirst(MethodClaim)?.Value ?? "console");
    }

    public ClaimsPrincipal ToPrincipal(string scheme) => new(new ClaimsIdentity(
        [new Claim(SubjectClaim, Subject), new Claim(MethodClaim, Method), .. Roles.Select(r => new Claim(RoleClaim, r.ToString().ToLowerInvariant()))],
        scheme, SubjectClaim, RoleClaim));

    public string RoleList => Roles.Count == 0 ? "no roles" : string.Join(", ", Roles.Order().Select(r => r.ToString().ToLowerInvariant()));
}

/// <summary>Dev mode: the printed dev operator secret signs in to the console as the dev operator (admin). Compared in constant time over hashes.</summary>
public sealed class ConsoleDevSignIn(string operatorSecret)
{
    private readonly byte[] _expected = SHA256.HashData(Encoding.UTF8.GetBytes(operatorSecret));

    public bool Matches(string presented) =>
        presented.Length is > 0 and <= 4096 && CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(presented)), _expected);
}
