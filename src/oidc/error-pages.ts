export interface ErrorPage {
  title: string;
  message: string;
}

/**
 * What a person sees when a sign-in cannot go on. The OAuth description is shown only for
 * request errors, where it names what the app got wrong; server errors say nothing internal.
 */
export function errorPageFor(error: string, description: string | undefined): ErrorPage {
  switch (error) {
    case 'server_error':
      return { title: 'Something went wrong', message: 'Latchkey could not finish this request. Please try again.' };
    case 'invalid_client':
      return { title: 'Unknown application', message: 'The application that sent you here is not registered with Latchkey.' };
    case 'invalid_redirect_uri':
      return {
        title: 'Unregistered return address',
        message: 'The application asked to send you back to an address it has not registered, so Latchkey stopped here.',
      };
    case 'session_not_found':
    case 'invalid_interaction':
      return { title: 'This sign-in has expired', message: 'Go back to the application and start signing in again.' };
    default:
      return { title: 'The sign-in request was refused', message: description ?? error };
  }
}
